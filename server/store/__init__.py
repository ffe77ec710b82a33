"""Every SQL statement of Assay, behind one interface: ``from assay import store; store.add_annotation(...)``.

The families, one module each:

- ``projects``: projects, and their counts (items, labeled, skipped; kept by triggers)
- ``items``: items and the imports that bring them (chunked, undone when they die half-way)
- ``answers``: labels, skips, imported labels and reviews; the live answers per item
- ``queue``: the queue a retrain leaves, leases, what was served with which prediction, the stop set, and
  each annotator's serving of each item (where it came from, with what probability: export's provenance)
- ``versions``: model versions and their stop-set predictions
- ``predictions``: the latest model's prediction per labeled item (and the queue's for the items it ranks)
- ``search``: items found by text, label and annotator, by id
- ``accounts``: users, roles (``ROLES``), API tokens, login sessions
- ``export``: the rows export writes, and the data fields they carry
- ``embeddings``: the embedding cache's files (apart from the project database)
- ``webhooks``: webhooks, the outbox of their deliveries, and the log of delivery attempts
- ``jobs``: retrain jobs, queued by the web process and claimed under a renewable lease by worker
  processes (at most one queued and one running per project)
- ``db``: the :class:`Database` handle, its serialized writer, migrations; :func:`connect` opens the database
  a ``DATABASE`` setting names: a SQLite file, or PostgreSQL (``postgres``: the same handle, ``migrations_pg``)

The contract:

- A caller passes a store handle, never a connection: the app's :class:`Database` (or PostgresDatabase,
  from :func:`connect`), or in another process :func:`open_readonly`'s handle. Reads take either; writes take
  the Database. Every function behaves the same on both engines.
- Functions that write (create_*, update_*, delete_*, insert_items, add_annotation, undo_annotation,
  replace_queue, release_leases, create_user, set_password, end_sessions, grant, add_token,
  revoke_token, discard_dead_imports, create_webhook, delete_webhook, claim_deliveries, release_claim,
  record_attempt, enqueue_job, heartbeat_job, release_job) each run in the Database's serialized writer
  (``db.write()``), one transaction per call unless they say they go in chunks; when they return,
  the change is committed.
- Composite writes decided outside the store (which items to serve: assay.domain.serving) open
  ``with db.write() as tx`` themselves and pass ``tx`` to the functions documented as taking it
  (expire_leases, leased_items, leased_hashes, queued_items, started_items, fresh_items, lease_items,
  record_served, record_servings, add_deliveries, claim_job, lapsed_jobs, end_job, lock_project, and any
  read; expire_leases opens a queue pull: it takes the project's lock first). An
  event's webhook deliveries are written this way, in the transaction that records the event
  (assay.webhooks.events); a claimed job ends in the transaction that records its model version
  (assay.learning.jobqueue). ``tx`` is opaque: it is only handed back to the store.
- What comes back is plain Python: dicts, lists, ints, str; JSON columns decoded. Missing rows
  raise :class:`~assay.errors.NotFound`, clashes :class:`~assay.errors.Conflict`.
- The store decides nothing: which answer wins (assay.domain.labels), what to serve
  (assay.domain.serving) and what counts as an audit (assay.learning) are its callers'.
"""
from __future__ import annotations

from .accounts import (ROLES, add_token, create_user, end_sessions, get_user, grant, list_tokens, revoke_token,
                       roles_of, set_password, user_for_token)
from .answers import (add_annotation, agreement_units, annotator_counts, suggestion_counts, answer_pages, answer_refusal, item_answers,
                      twin_source, undo_annotation)
from .db import (Database, ReadOnlyDatabase, connect, database_file, database_setting, lock_project, open_readonly,
                 politely)
from .export import export_data_keys, export_data_types, export_rows
from .jobs import (claim_job, end_job, enqueue_job, heartbeat_job, lapsed_jobs, open_jobs, project_jobs,
                   release_job)
from .items import (IMPORT_CHUNK, SHUFFLE_RANGE, all_item_ids, content_hash, content_hashes, delete_items,
                    discard_dead_imports, duplicate_count, existing_external_ids, external_ids, get_item,
                    insert_items, item_data, iter_items_data, pool_item_ids, shuffled_item_ids, twin_ids)
from .predictions import item_predictions
from .projects import counts, create_project, delete_project, get_project, list_projects, update_project
from .queue import (expire_leases, fresh_items, item_servings, lease_items, leased_hashes, leased_items,
                    queue_predictions,
                    queued_items, record_served, record_servings, release_leases, replace_queue, served_predictions,
                    started_items, stop_set_ids)
from .search import page_items, search_items
from .versions import (featurizing, keep_stop_predictions, latest_version, model_versions, record_model_version,
                       set_featurizing, stop_predictions, unfinished_featurizing, version_shares)
from .webhooks import (add_deliveries, claim_deliveries, create_webhook, delete_webhook, delivery_log, get_webhook,
                       list_webhooks, next_due, record_attempt, release_claim, subscribed_hooks)
