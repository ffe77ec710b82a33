"""GET /api/openapi.json: the OpenAPI 3.0 description of the API, written by hand next to the routes."""
from __future__ import annotations

from flask import jsonify

from assay.domain import settings

from .base import bp

_ERROR = {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_PID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}


def _json(schema, description="ok"):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


SPEC = {
    "openapi": "3.0.3",
    "info": {"title": "Assay", "version": "0.1.0",
             "description": "Active-learning annotation server. Errors are JSON {error, status}. "
                            "With ASSAY_AUTH on, send Authorization: Bearer TOKEN. "
                            "From Python: from assay import Client (assay/client.py)."},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error", "status"],
                      "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}},
            "ProjectIn": settings.input_schema(),
            "Project": {"type": "object", "properties": {
                "id": {"type": "integer"}, **settings.shown_schema(),
                "items": {"type": "integer"}, "labeled": {"type": "integer"}}},
            "Prediction": {"type": "object", "description": (
                "the model's prediction the item was queued with. Single-label: label and confidence; multi-label: "
                "labels (every one at 0.5 or more) and probs. top: the model's first guesses, best first, as "
                "[label, probability] pairs (at most 5; the labeling page's keys 1-5 when a project has more than "
                "10 labels). probs, the per-label table, is whole only for projects of up to 10 labels: single-label "
                "projects with more have none, multi-label ones keep the labels in labels and top"),
                "properties": {
                    "label": {"type": "string"}, "confidence": {"type": "number"},
                    "labels": {"type": "array", "items": {"type": "string"}},
                    "probs": {"type": "object", "additionalProperties": {"type": "number"}},
                    "top": {"type": "array", "maxItems": 5, "items": {
                        "type": "array", "minItems": 2, "maxItems": 2,
                        "items": {"oneOf": [{"type": "string"}, {"type": "number"}]}}}}},
            "QueueItem": {"type": "object", "required": ["id", "data", "strategy"], "properties": {
                "id": {"type": "integer"}, "data": {"type": "object"},
                "prediction": {"allOf": [_ref("Prediction")], "nullable": True},
                "score": {"type": "number", "nullable": True}, "strategy": {"type": "string"},
                "model_version": {"type": "integer", "nullable": True},
                "ranked_among": {"type": "integer", "nullable": True,
                                 "description": "how many pool items the model version that ranked this item "
                                                "ranked (fewer than pool_size while the pool is being featurized: "
                                                "a uniform random share of it)"},
                "pool_size": {"type": "integer", "nullable": True}}},
            "AnnotationIn": {"type": "object", "required": ["item_id"], "properties": {
                "item_id": {"type": "integer"}, "label": {"type": "string"},
                "labels": {"type": "array", "items": {"type": "string"}}, "skip": {"type": "boolean"},
                "duration_ms": {"type": "integer", "minimum": 0},
                "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200},
                "suggested": {"type": "string", "description": "the label the page showed as the model's first "
                                                              "guess with this item (absent: none shown)"},
                "accepted": {"type": "boolean", "description": "whether the label is the suggested one (the server "
                                                              "works it out; if sent, it must agree)"}}},
            "Annotation": {"type": "object", "properties": {
                "id": {"type": "integer"}, "item_id": {"type": "integer"}, "annotator": {"type": "string"},
                "label": {}, "skipped": {"type": "boolean"}, "created_at": {"type": "string"},
                "duplicate": {"type": "boolean"}}},
            "Stats": {"type": "object", "required": ["labeled", "unlabeled", "skipped", "model_version", "retraining",
                                                     "strategy", "label_counts", "history"],
                      "properties": {
                          "labeled": {"type": "integer"}, "unlabeled": {"type": "integer"},
                          "skipped": {"type": "integer"}, "model_version": {"type": "integer", "nullable": True},
                          "retraining": {"type": "boolean"}, "strategy": {"type": "string"},
                          "featurized": {"type": "object", "required": ["done", "total"], "properties": {
                              "done": {"type": "integer"}, "total": {"type": "integer"}},
                              "description": "items featurized (embedded) so far, of all the project's items; "
                                             "a retrain ranks the featurized part of the pool"},
                          "ranked": {"type": "object", "nullable": True, "properties": {
                              "version": {"type": "integer"}, "ranked": {"type": "integer", "nullable": True},
                              "pool": {"type": "integer", "nullable": True}},
                              "description": "the pool items the newest ranking version ranked, of the pool"},
                          "retrain_progress": {"type": "object", "nullable": True, "properties": {
                              "stage": {"type": "string"}, "fraction": {"type": "number"}},
                              "description": "the project's retrain: 'waiting' while queued (with "
                                             "ASSAY_WORKERS=external, until an `assay worker` claims it, and "
                                             "again after its worker died, until the lease lapses and another "
                                             "retakes it), then the running job's stage; null when none"},
                          "featurizer": {"type": "string", "nullable": True},
                          "featurizer_notice": {"type": "string", "nullable": True},
                          "label_counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                          "quality": _ref("Quality"),
                          "history": {"type": "array", "items": _ref("Version")}}},
            "Interval": {"type": "object", "properties": {
                "accuracy": {"type": "number"}, "low": {"type": "number"}, "high": {"type": "number"},
                "method": {"type": "string"}, "n_tests": {"type": "integer"}, "n_audit": {"type": "integer"},
                "audit_low": {"type": "number", "nullable": True}, "audit_high": {"type": "number", "nullable": True}},
                "description": "the model's estimated accuracy on the data and its 90% interval, from the labeled "
                               "items' prequential tests (the prediction each was served with) and the audits; "
                               "the interval holds the audits' own (audit_low to audit_high), which rests on no "
                               "calibration"},
            "Quality": {"type": "object", "description": "how good the latest model is, whether to stop, and the "
                                                         "labels the target needs (single-label projects)",
                        "properties": {
                "model_version": {"type": "integer", "nullable": True},
                "n_labels": {"type": "integer", "nullable": True},
                "estimate": {"allOf": [_ref("Interval")], "nullable": True},
                "majority": {"type": "object", "nullable": True, "description": "always answering the commonest class",
                             "properties": {"label": {"type": "string"}, "accuracy": {"type": "number"}}},
                "audit": {"type": "object", "nullable": True, "description": "from the audits alone (a uniform sample)",
                          "properties": {"n": {"type": "integer"}, "macro_f1": {"type": "number"},
                                         "recall": {"type": "object", "additionalProperties": {
                                             "type": "object", "properties": {"recall": {"type": "number"},
                                                                              "n": {"type": "integer"}}}}}},
                "audit_share": {"type": "number"},
                "stop": {"type": "object", "nullable": True, "properties": {
                    "signal": {"type": "boolean"}, "kappa": {"type": "number", "nullable": True},
                    "threshold": {"type": "number"}, "lag_share": {"type": "number"},
                    "predicted_gain": {"type": "number", "nullable": True,
                                       "description": "the accuracy the model expects to have gained over the "
                                                      "reference on the stop set (its probability of its own "
                                                      "prediction less that of the reference's, averaged)"},
                    "gain_threshold": {"type": "number"}, "kappa_floor": {"type": "number"},
                    "settled": {"type": "boolean",
                                "description": "this version: kappa >= threshold, or kappa >= kappa_floor and "
                                               "predicted_gain <= gain_threshold"},
                    "rounds": {"type": "integer",
                               "description": "the signal fires once this many versions in a row have settled"},
                    "stop_set": {"type": "integer"},
                    "reference_version": {"type": "integer", "nullable": True},
                    "reference_labels": {"type": "integer", "nullable": True}}},
                "target_accuracy": {"type": "number", "nullable": True},
                "projection": {"type": "object", "nullable": True, "properties": {
                    "target": {"type": "number"},
                    "status": {"type": "string", "enum": ["reached", "projected", "out of reach", "too few points",
                                                          "uncertain"]},
                    "labels_needed": {"type": "integer", "nullable": True},
                    "low": {"type": "integer", "nullable": True}, "high": {"type": "integer", "nullable": True},
                    "plateau": {"type": "number", "nullable": True},
                    "plateau_low": {"type": "number", "nullable": True},
                    "plateau_high": {"type": "number", "nullable": True}, "message": {"type": "string"}}}}},
            "Version": {"type": "object", "properties": {
                "version": {"type": "integer"}, "status": {"type": "string"}, "n_labels": {"type": "integer"},
                "accuracy": {"type": "number", "nullable": True,
                             "description": "cross-validation on the labeled items (biased low under active learning)"},
                "estimate": {"type": "number", "nullable": True}, "estimate_low": {"type": "number", "nullable": True},
                "estimate_high": {"type": "number", "nullable": True}, "kappa": {"type": "number", "nullable": True},
                "stop_signal": {"type": "integer", "nullable": True}}},
            "ItemPrediction": {"type": "object", "nullable": True,
                           "description": "the latest model's prediction; held_out: made without this item's "
                                          "label (out of fold, or before it was labeled)",
                           "properties": {"label": {"type": "string"}, "confidence": {"type": "number"},
                                          "labels": {"type": "array", "items": {"type": "string"}},
                                          "probs": {"type": "object"}, "model_version": {"type": "integer"},
                                          "held_out": {"type": "boolean"}}},
            "FoundItem": {"type": "object", "required": ["id", "data", "label", "annotations", "prediction",
                                                         "disagrees"], "properties": {
                "id": {"type": "integer"}, "external_id": {"type": "string", "nullable": True},
                "data": {"type": "object"},
                "label": {"nullable": True, "description": "the item's label as export resolves it (an annotator: "
                                                           "their own); a list for multi-label"},
                "annotations": {"type": "array", "items": {"type": "object", "properties": {
                    "annotator": {"type": "string"}, "label": {}, "source": {"type": "string"},
                    "created_at": {"type": "string"}}}},
                "prediction": _ref("ItemPrediction"),
                "disagrees": {"type": "boolean", "nullable": True,
                              "description": "the prediction differs from the label (null: no label or prediction)"}}},
            "ItemSearch": {"type": "object", "required": ["items", "total", "page", "per_page", "pages"],
                           "properties": {"items": {"type": "array", "items": _ref("FoundItem")},
                                          "total": {"type": "integer"}, "page": {"type": "integer"},
                                          "per_page": {"type": "integer"}, "pages": {"type": "integer"}}},
            "ReopenedItem": {"type": "object", "required": ["id", "data", "label", "prediction", "refusal"],
                             "properties": {
                "id": {"type": "integer"}, "external_id": {"type": "string", "nullable": True},
                "data": {"type": "object"}, "label": {"nullable": True, "description": "your label on it"},
                "prediction": _ref("ItemPrediction"),
                "refusal": {"type": "string", "nullable": True,
                            "description": "why you may not answer it now (others hold its places); null: you may"}}},
            "DeleteResult": {"type": "object", "properties": {"deleted": {"type": "integer"},
                                                                "labeled": {"type": "integer"}}},
            "ImportResult": {"type": "object", "properties": {
                "imported": {"type": "integer"},
                "skipped": {"type": "integer", "description": "rows whose id the project has, or an earlier row has"},
                "repeated": {"type": "array", "description": "rows that repeat an earlier row's id (only if any)",
                             "items": {"type": "object", "properties": {
                                 "row": {"type": "integer"}, "id": {"type": "string"}, "first_row": {"type": "integer"}}}},
                "invalid": {"type": "array", "description": "rows left out with skip_invalid=true (only if any)",
                            "items": {"type": "object", "properties": {
                                "row": {"type": "integer"}, "error": {"type": "string"}}}}}},
            "WebhookIn": {"type": "object", "required": ["url", "events"], "additionalProperties": False,
                          "description": "Each event is POSTed to url as JSON {event, delivery_id, project_id, "
                                         "timestamp, data}, signed: X-Assay-Signature: sha256=<hex HMAC-SHA256 of the "
                                         "raw body, keyed by the secret>. Only the hosts in ASSAY_WEBHOOK_HOSTS (this "
                                         "machine and private networks too only when listed), or any public host with "
                                         "ASSAY_WEBHOOK_ANY_HOST=true; redirects are not followed.",
                          "properties": {
                              "url": {"type": "string", "maxLength": 2000, "description": "http:// or https://"},
                              "events": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": [
                                  "annotation.created", "model.trained", "model.failed", "project.stop_signal"]}},
                              "secret": {"type": "string", "minLength": 16, "maxLength": 256,
                                         "description": "left out: the server makes one and returns it once"}}},
            "Webhook": {"type": "object", "required": ["id", "url", "events"], "properties": {
                "id": {"type": "integer"}, "project_id": {"type": "integer"}, "url": {"type": "string"},
                "events": {"type": "array", "items": {"type": "string"}},
                "created_by": {"type": "string", "nullable": True}, "created_at": {"type": "string"},
                "deliveries": {"type": "object", "properties": {
                    "pending": {"type": "integer"}, "delivered": {"type": "integer"}, "failed": {"type": "integer"}}},
                "secret": {"type": "string", "description": "only in the answer to a registration without a "
                                                            "secret; never shown again"}}},
            "Delivery": {"type": "object", "properties": {
                "id": {"type": "integer"}, "hook_id": {"type": "integer"}, "event": {"type": "string"},
                "delivery_id": {"type": "string"},
                "state": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                "attempts": {"type": "integer"},
                "next_attempt_at": {"type": "number", "nullable": True, "description": "epoch seconds, if pending"},
                "created_at": {"type": "string"},
                "log": {"type": "array", "items": {"type": "object", "properties": {
                    "attempt": {"type": "integer"}, "status_code": {"type": "integer", "nullable": True},
                    "error": {"type": "string", "nullable": True}, "duration_ms": {"type": "integer", "nullable": True},
                    "at": {"type": "string"}}}}}},
        },
    },
    "security": [{"bearer": []}, {}],
    "paths": {
        "/api/projects": {
            "get": {"summary": "List projects", "responses": {"200": _json({"type": "array", "items": _ref("Project")})}},
            "post": {"summary": "Create a project",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("ProjectIn")}}},
                     "responses": {"201": _json({"type": "object", "properties": {"id": {"type": "integer"}}}),
                                   "400": _ERROR, "409": _ERROR}},
        },
        "/api/projects/{id}": {
            "parameters": [_PID],
            "get": {"summary": "Show a project", "responses": {"200": _json(_ref("Project")), "404": _ERROR}},
            "patch": {"summary": "Change a project's settings (item_type only while it has no items)",
                      "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}},
                      "responses": {"200": _json(_ref("Project")), "400": _ERROR, "404": _ERROR, "409": _ERROR}},
            "delete": {"summary": "Delete the project with its items and every label (owner only)",
                       "parameters": [{"name": "confirm", "in": "query", "required": True,
                                       "description": "the project's name", "schema": {"type": "string"}}],
                       "responses": {"200": _json({"type": "object", "properties": {
                           "deleted": {"type": "string"}, "items": {"type": "integer"},
                           "labeled": {"type": "integer"}}}), "400": _ERROR, "403": _ERROR, "404": _ERROR}},
        },
        "/api/projects/{id}/items/{item_id}": {
            "parameters": [_PID, {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "get": {"summary": "One item as the labeling page re-opens it (/projects/{id}/annotate?item={item_id}): "
                               "its data, your label, the model's prediction, and whether you may answer it",
                    "responses": {"200": _json(_ref("ReopenedItem")), "403": _ERROR, "404": _ERROR}},
            "delete": {"summary": "Delete one item (owner only); one with labels only with with_labels=true",
                       "parameters": [{"name": "with_labels", "in": "query",
                                       "schema": {"type": "string", "enum": ["true", "false"], "default": "false"}}],
                       "responses": {"200": _json(_ref("DeleteResult")), "403": _ERROR, "404": _ERROR,
                                     "409": _ERROR}},
        },
        "/api/projects/{id}/items/delete": {
            "parameters": [_PID],
            "post": {"summary": "Delete several items, all or none (owner only)",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["ids"], "properties": {
                             "ids": {"type": "array", "items": {"type": "integer"}, "minItems": 1},
                             "with_labels": {"type": "boolean", "default": False}}}}}},
                     "responses": {"200": _json(_ref("DeleteResult")), "400": _ERROR, "403": _ERROR, "404": _ERROR,
                                   "409": _ERROR}},
        },
        "/api/projects/{id}/items": {
            "parameters": [_PID],
            "get": {"summary": "Search the items: filters combine; annotators see only their own answers",
                    "parameters": [
                        {"name": "q", "in": "query", "description": "a substring of any of the item's values, "
                                                                    "ignoring case",
                         "schema": {"type": "string", "maxLength": 200}},
                        {"name": "label", "in": "query", "description": "a live answer carries this label (with "
                                                                        "annotator: theirs does)",
                         "schema": {"type": "string"}},
                        {"name": "annotator", "in": "query", "description": "items this annotator labeled",
                         "schema": {"type": "string", "maxLength": 200}},
                        {"name": "disagree", "in": "query",
                         "description": "1: only labeled items whose prediction (made without their label) differs "
                                        "from it (single-label projects)",
                         "schema": {"type": "string", "enum": ["0", "1", "true", "false"]}},
                        {"name": "page", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": 1000000, "default": 1}},
                        {"name": "per_page", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}}],
                    "responses": {"200": _json(_ref("ItemSearch")), "400": _ERROR, "403": _ERROR, "404": _ERROR}},
            "post": {"summary": "Import items: a JSON list of objects, or a CSV/TSV/JSONL file (multipart field 'file')",
                     "parameters": [{"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                                    for n in ("text_column", "id_column", "label_column", "image_column", "format")]
                                   + [{"name": "skip_invalid", "in": "query", "required": False,
                                       "description": "true: leave out (and list) the rows that cannot be imported "
                                                      "instead of refusing the file",
                                       "schema": {"type": "string", "enum": ["0", "1", "true", "false"]}}],
                     "requestBody": {"required": True, "content": {
                         "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                         "multipart/form-data": {"schema": {"type": "object", "properties": {
                             "file": {"type": "string", "format": "binary"}}}}}},
                     "responses": {"200": _json(_ref("ImportResult")), "400": _ERROR, "404": _ERROR, "413": _ERROR}},
        },
        "/api/projects/{id}/queue": {
            "parameters": [_PID],
            "get": {"summary": "The next items for this annotator, best first (leased to them)",
                    "parameters": [{"name": "n", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                            "maximum": 100, "default": 5}}],
                    "responses": {"200": _json({"type": "array", "items": _ref("QueueItem")}), "400": _ERROR,
                                  "404": _ERROR}},
        },
        "/api/projects/{id}/predictions": {
            "parameters": [_PID],
            "get": {"summary": "The current queue's prediction, score and model version for items already pulled "
                               "(those the queue holds); a labeling page asks again when a new model lands",
                    "parameters": [{"name": "ids", "in": "query", "required": True,
                                    "schema": {"type": "string"}, "description": "item ids, comma-separated"}],
                    "responses": {"200": _json({"type": "object", "properties": {"items": {"type": "object"}}}),
                                  "400": _ERROR, "404": _ERROR}},
        },
        "/api/projects/{id}/annotations": {
            "parameters": [_PID],
            "post": {"summary": "Label, multi-label or skip an item",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("AnnotationIn")}}},
                     "responses": {"201": _json(_ref("Annotation")), "200": _json(_ref("Annotation"), "a retried request"),
                                   "400": _ERROR, "404": _ERROR}},
        },
        "/api/projects/{id}/annotations/{item_id}": {
            "parameters": [_PID, {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "delete": {"summary": "Undo this annotator's label on the item",
                       "responses": {"200": _json({"type": "object"}), "404": _ERROR}},
        },
        "/api/projects/{id}/stats": {
            "parameters": [_PID],
            "get": {"summary": "Progress, model versions and learning curve",
                    "responses": {"200": _json(_ref("Stats")), "404": _ERROR}},
        },
        "/api/projects/{id}/retrain": {
            "parameters": [_PID],
            "post": {"summary": "Start a retrain now",
                     "description": "With ASSAY_WORKERS=embedded (the default) the server's own worker process "
                                    "runs it; with external, a row of the jobs table that an `assay worker` "
                                    "process claims. Either way a request while one waits joins it. With "
                                    "ASSAY_CLUSTER set (a Dask scheduler address, or local) the pool is scored on "
                                    "that cluster from Parquet shards: the same queue as in one process for the "
                                    "top-k and power/softmax/softrank strategies, a shortlist of the 2,000 most "
                                    "uncertain items for dpp.",
                     "responses": {"202": _json({"type": "object"}), "404": _ERROR}},
        },
        "/api/projects/{id}/export": {
            "parameters": [_PID],
            "get": {"summary": "The labeled set, one row per labeled item, streamed",
                    "description": "jsonl and csv as text; parquet (pyarrow) for training code, written a row "
                                   "group at a time; labelstudio: Label Studio's task JSON, one task per item "
                                   "with every answer. A Hugging Face folder is the CLI's (assay export "
                                   "--format hf -o FOLDER).",
                    "parameters": [{"name": "format", "in": "query",
                                    "schema": {"type": "string", "enum": ["jsonl", "csv", "parquet", "labelstudio"],
                                               "default": "jsonl"}},
                                   {"name": "annotations", "in": "query",
                                    "description": "resolved: one row per item (adjudicated, else majority); "
                                                   "all: one row per answer (not for labelstudio)",
                                    "schema": {"type": "string", "enum": ["resolved", "all"], "default": "resolved"}},
                                   {"name": "provenance", "in": "query",
                                    "description": "1: add where each label came from: strategy, score, "
                                                   "model_version, model_labels, ranked_among, pool_size, "
                                                   "selection_prob, "
                                                   "labels_when_served, served_at (the item's first serving) "
                                                   "and answers (every answer with its annotator's serving)",
                                    "schema": {"type": "string", "enum": ["0", "1", "false", "true"],
                                               "default": "0"}}],
                    "responses": {"200": {"description": "JSONL, CSV, Parquet or Label Studio JSON", "content": {
                        "application/x-ndjson": {"schema": {"type": "string"}},
                        "text/csv": {"schema": {"type": "string"}},
                        "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
                        "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}}},
                                  "400": _ERROR, "404": _ERROR}},
        },
        "/api/projects/{id}/agreement": {
            "parameters": [_PID],
            "get": {"summary": "Inter-annotator agreement: Krippendorff's alpha overall and per label, Cohen's kappa",
                    "responses": {"200": _json({"type": "object", "properties": {
                        "items_with_overlap": {"type": "integer"}, "alpha": {"type": "number", "nullable": True},
                        "kappa": {"type": "number", "nullable": True}, "disagreements": {"type": "integer"},
                        "per_label_alpha": {"type": "object"}, "pairwise_kappa": {"type": "array",
                                                                                 "items": {"type": "object"}},
                        "annotators": {"type": "array", "items": {"type": "string"}}}}),
                                  "403": _ERROR, "404": _ERROR}},
        },
        "/api/projects/{id}/disagreements": {
            "parameters": [_PID],
            "get": {"summary": "Items whose annotators disagree, with every answer",
                    "parameters": [{"name": "limit", "in": "query",
                                    "schema": {"type": "integer", "minimum": 0, "default": 50}}],
                    "responses": {"200": _json({"type": "array", "items": {"type": "object"}}), "400": _ERROR,
                                  "403": _ERROR, "404": _ERROR}},
        },
        "/api/projects/{id}/reviews": {
            "parameters": [_PID],
            "post": {"summary": "A reviewer's final label for an item (export prefers it)",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {
                         "type": "object", "required": ["item_id"], "properties": {
                             "item_id": {"type": "integer"}, "label": {"type": "string"},
                             "labels": {"type": "array", "items": {"type": "string"}}}}}}},
                     "responses": {"201": _json({"type": "object"}), "400": _ERROR, "403": _ERROR,
                                   "404": _ERROR}},
        },
        "/api/projects/{id}/webhooks": {
            "parameters": [_PID],
            "get": {"summary": "The project's webhooks, with their deliveries counted (owner only; never the secrets)",
                    "responses": {"200": _json({"type": "array", "items": _ref("Webhook")}), "403": _ERROR,
                                  "404": _ERROR}},
            "post": {"summary": "Register a webhook (owner only)",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("WebhookIn")}}},
                     "responses": {"201": _json(_ref("Webhook")), "400": _ERROR, "403": _ERROR, "404": _ERROR}},
        },
        "/api/projects/{id}/webhooks/{hook_id}": {
            "parameters": [_PID, {"name": "hook_id", "in": "path", "required": True,
                                  "schema": {"type": "integer", "minimum": 1}}],
            "delete": {"summary": "Delete a webhook and its deliveries not yet made (owner only)",
                       "responses": {"200": _json({"type": "object", "properties": {"deleted": _ref("Webhook")}}),
                                     "403": _ERROR, "404": _ERROR}},
        },
        "/api/projects/{id}/webhooks/deliveries": {
            "parameters": [_PID],
            "get": {"summary": "The delivery log: the latest deliveries, newest first, each with its attempts "
                               "(time, status code, error) (owner only)",
                    "parameters": [{"name": "limit", "in": "query",
                                    "schema": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}},
                                   {"name": "hook", "in": "query", "description": "only this webhook's",
                                    "schema": {"type": "integer", "minimum": 1}}],
                    "responses": {"200": _json({"type": "array", "items": _ref("Delivery")}), "400": _ERROR,
                                  "403": _ERROR, "404": _ERROR}},
        },
        "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": _json({"type": "object"})}}},
        "/api/operator/imported": {"post": {
            "summary": "assay import wrote items or labels into this server's database: featurize and retrain",
            "description": "For the operator's `assay import`. Needs the X-Assay-Operator header, as "
                           "/api/operator/importable does; anyone else gets 403.",
            "parameters": [{"name": "X-Assay-Operator", "in": "header", "required": True,
                            "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["project_id"],
                "properties": {"project_id": {"type": "integer", "minimum": 1}}}}}},
            "responses": {"200": _json({"type": "object", "properties": {"retrain": {"type": "string"}}}),
                          "400": _ERROR, "403": _ERROR, "404": _ERROR}}},
        "/api/operator/importable": {"post": {
            "summary": "Whether this server's Python finds a model's or featurizer's module (nothing is imported)",
            "description": "For the operator's `assay create-project`, which warns when the running server could "
                           "not import the model it names. Needs the X-Assay-Operator header: the token the server "
                           "wrote into its instance folder (servers/<pid>.json); anyone else gets 403.",
            "parameters": [{"name": "X-Assay-Operator", "in": "header", "required": True,
                            "schema": {"type": "string"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["kind", "spec"], "properties": {
                    "kind": {"type": "string", "enum": ["model", "featurizer"]},
                    "spec": {"type": "string", "example": "mymodels:sgd_pipeline"}}}}}},
            "responses": {"200": _json({"type": "object", "properties": {
                "importable": {"type": "boolean"}, "error": {"type": "string", "nullable": True}}}),
                "400": _ERROR, "403": _ERROR}}},
    },
}


@bp.get("/openapi.json")
def openapi():
    return jsonify(SPEC)
