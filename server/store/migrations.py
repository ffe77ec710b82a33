"""The schema, as an ordered list of migrations. Never edit one that has shipped: add another.

Each migration receives a sqlite_utils.Database on the writer connection, inside
the transaction that also records it in the ``migrations`` table.
"""
from __future__ import annotations

import json


def _initial(db):
    db.execute(
        """
        CREATE TABLE projects (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            labels TEXT NOT NULL,                 -- JSON list, in the order keys 1-9 follow
            multi_label INTEGER NOT NULL DEFAULT 0,
            item_type TEXT NOT NULL DEFAULT 'text' CHECK (item_type IN ('text', 'image', 'tabular')),
            strategy TEXT NOT NULL DEFAULT 'power_bald',
            strategy_params TEXT NOT NULL DEFAULT '{}',
            model TEXT NOT NULL DEFAULT 'logreg',
            model_params TEXT NOT NULL DEFAULT '{}',
            featurizer TEXT,
            batch_size INTEGER NOT NULL DEFAULT 10,
            retrain_every INTEGER NOT NULL DEFAULT 10,
            overlap INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        )
        """
    )
    # n_labels / n_skips / n_done are kept in step with annotations inside the same
    # transaction, so queue pulls filter with an index instead of a join.
    # shuffle is a random key fixed at import: random picks are an index range scan.
    db.execute(
        """
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            external_id TEXT,
            data TEXT NOT NULL,
            shuffle INTEGER NOT NULL,
            n_labels INTEGER NOT NULL DEFAULT 0,
            n_skips INTEGER NOT NULL DEFAULT 0,
            n_done INTEGER NOT NULL DEFAULT 0,    -- n_labels + n_skips: annotators finished with it
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX items_external ON items(project_id, external_id)")
    db.execute("CREATE INDEX items_pool ON items(project_id, n_done, shuffle)")
    db.execute(
        """
        CREATE TABLE annotations (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            annotator TEXT NOT NULL,
            label TEXT,                           -- JSON: a string, or a list for multi-label
            skipped INTEGER NOT NULL DEFAULT 0,
            source TEXT NOT NULL DEFAULT 'annotator', -- 'annotator' | 'import' | 'review'
            duration_ms INTEGER,
            idempotency_key TEXT,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            undone_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX annotations_item ON annotations(item_id, undone_at)")
    db.execute("CREATE INDEX annotations_project ON annotations(project_id, undone_at, skipped)")
    db.execute("CREATE INDEX annotations_annotator ON annotations(project_id, annotator, undone_at)")
    db.execute(
        "CREATE UNIQUE INDEX annotations_idempotency ON annotations(project_id, annotator, idempotency_key)"
        " WHERE idempotency_key IS NOT NULL"
    )
    db.execute(
        """
        CREATE TABLE model_versions (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            status TEXT NOT NULL,                 -- 'ok' | 'cold_start' | 'failed' | 'timeout'
            model TEXT NOT NULL,
            strategy TEXT NOT NULL,
            n_labels INTEGER NOT NULL,
            label_counts TEXT NOT NULL DEFAULT '{}',
            accuracy REAL,
            accuracy_std REAL,
            accuracy_method TEXT,
            fit_seconds REAL,
            acquire_seconds REAL,
            total_seconds REAL,
            pool_size INTEGER,
            error TEXT,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            UNIQUE(project_id, version)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE queue (
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            rank INTEGER NOT NULL,
            score REAL,
            strategy TEXT NOT NULL,
            model_version INTEGER,
            prediction TEXT,                      -- JSON {"label", "confidence", "probs"} or null
            PRIMARY KEY (project_id, item_id)
        )
        """
    )
    db.execute("CREATE INDEX queue_rank ON queue(project_id, rank)")
    db.execute(
        """
        CREATE TABLE leases (
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            annotator TEXT NOT NULL,
            expires_at REAL NOT NULL,             -- unix seconds
            PRIMARY KEY (item_id, annotator)
        )
        """
    )
    db.execute("CREATE INDEX leases_project ON leases(project_id, expires_at)")


def _accounts(db):
    db.execute(
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            password_hash TEXT,                   -- NULL: API tokens only, no browser login
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        )
        """
    )
    # project_id NULL: the role holds on every project.
    db.execute(
        """
        CREATE TABLE memberships (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            project_id INTEGER REFERENCES projects(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('owner', 'annotator', 'reviewer'))
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX memberships_unique ON memberships(user_id, coalesce(project_id, 0))")
    db.execute(
        """
        CREATE TABLE tokens (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            token_hash TEXT NOT NULL UNIQUE,      -- sha256 of the token; the token itself is never stored
            prefix TEXT NOT NULL,                 -- first characters, to tell tokens apart when revoking
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            last_used_at TEXT,
            revoked_at TEXT
        )
        """
    )


def _counters(db):
    """Per-project counts kept by triggers, so progress reads one row instead of scanning 100k items.

    ``revision`` moves with every change to a project's answers: caches of
    anything derived from them (label counts) key on it.
    """
    db.execute(
        """
        CREATE TABLE project_counts (
            project_id INTEGER PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
            items INTEGER NOT NULL DEFAULT 0,
            labeled INTEGER NOT NULL DEFAULT 0,   -- items with a live label
            skipped INTEGER NOT NULL DEFAULT 0,   -- items only skipped
            untouched INTEGER NOT NULL DEFAULT 0, -- items nobody answered
            revision INTEGER NOT NULL DEFAULT 0
        )
        """
    )
    db.execute(
        """
        INSERT INTO project_counts (project_id, items, labeled, skipped, untouched)
        SELECT p.id, count(i.id), coalesce(sum(i.n_labels > 0), 0),
               coalesce(sum(i.n_labels = 0 AND i.n_skips > 0), 0), coalesce(sum(i.n_done = 0), 0)
        FROM projects p LEFT JOIN items i ON i.project_id = p.id GROUP BY p.id
        """
    )
    db.execute("""CREATE TRIGGER project_counts_new_project AFTER INSERT ON projects BEGIN
        INSERT INTO project_counts (project_id) VALUES (new.id); END""")
    db.execute("""CREATE TRIGGER project_counts_new_item AFTER INSERT ON items BEGIN
        UPDATE project_counts SET items = items + 1, labeled = labeled + (new.n_labels > 0),
            skipped = skipped + (new.n_labels = 0 AND new.n_skips > 0), untouched = untouched + (new.n_done = 0)
        WHERE project_id = new.project_id; END""")
    db.execute("""CREATE TRIGGER project_counts_item_answered AFTER UPDATE OF n_labels, n_skips, n_done ON items BEGIN
        UPDATE project_counts SET
            labeled = labeled + (new.n_labels > 0) - (old.n_labels > 0),
            skipped = skipped + (new.n_labels = 0 AND new.n_skips > 0) - (old.n_labels = 0 AND old.n_skips > 0),
            untouched = untouched + (new.n_done = 0) - (old.n_done = 0)
        WHERE project_id = new.project_id; END""")
    db.execute("""CREATE TRIGGER project_counts_item_gone AFTER DELETE ON items BEGIN
        UPDATE project_counts SET items = items - 1, labeled = labeled - (old.n_labels > 0),
            skipped = skipped - (old.n_labels = 0 AND old.n_skips > 0), untouched = untouched - (old.n_done = 0)
        WHERE project_id = old.project_id; END""")
    db.execute("""CREATE TRIGGER project_counts_answer AFTER INSERT ON annotations BEGIN
        UPDATE project_counts SET revision = revision + 1 WHERE project_id = new.project_id; END""")
    db.execute("""CREATE TRIGGER project_counts_answer_undone AFTER UPDATE OF undone_at ON annotations BEGIN
        UPDATE project_counts SET revision = revision + 1 WHERE project_id = new.project_id; END""")


def _imports(db):
    """Imports run in chunks, each its own transaction; an import that never finished is undone.

    ``items.import_id`` names the import that brought an item. An ``imports``
    row without ``finished_at`` whose process (``pid``) is gone is one that died
    half-way: its items are deleted at the next start (store.discard_dead_imports).
    """
    db.execute(
        """
        CREATE TABLE imports (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            pid INTEGER NOT NULL,
            started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            finished_at TEXT
        )
        """
    )
    db.execute("ALTER TABLE items ADD COLUMN import_id INTEGER")


def _session_generation(db):
    """A counter per user that each login session records when it begins.

    A signed session cookie cannot be taken back, so ending sessions (logout, a new
    password) bumps the counter, and a session from an older generation is refused.
    """
    db.execute("ALTER TABLE users ADD COLUMN session_generation INTEGER NOT NULL DEFAULT 0")


def _project_keys(db):
    """The keys that pick a project's labels on the annotate page, when the project chooses them.

    A JSON list with one single-character key per label; NULL: the page's default keys.
    """
    db.execute("ALTER TABLE projects ADD COLUMN keys TEXT")


def _evaluation(db):
    """What the accuracy estimate, the stopping signal and the projection need and produce.

    ``served`` keeps, per item, the prediction the live model showed when the item was first handed out,
    before any model trained on it (a prequential test once the item is labeled), and whether it was an
    audit pick (drawn uniformly). ``stop_predictions`` holds the latest model's predictions on the fixed
    stop set, for the next model's kappa (0008 keeps more than the latest).
    """
    db.execute("ALTER TABLE projects ADD COLUMN audit_share REAL NOT NULL DEFAULT 0.05")
    db.execute("ALTER TABLE projects ADD COLUMN target_accuracy REAL")
    for column in ("estimate REAL", "estimate_low REAL", "estimate_high REAL", "kappa REAL",
                   "stop_signal INTEGER", "evaluation TEXT"):
        db.execute(f"ALTER TABLE model_versions ADD COLUMN {column}")
    db.execute(
        """
        CREATE TABLE served (
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            model_version INTEGER NOT NULL,
            strategy TEXT NOT NULL,
            predicted TEXT NOT NULL,              -- JSON: the predicted label
            confidence REAL NOT NULL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            PRIMARY KEY (project_id, item_id)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE stop_predictions (
            project_id INTEGER PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            predictions TEXT NOT NULL             -- JSON {item_id: predicted label}
        )
        """
    )


def _stop_history(db):
    """The stop signal compares the current model with the newest one trained on at most 80% of its labels
    (assay.evaluation.stopping), not with the previous one: keep the stop-set predictions of the versions
    such a comparison can still need, with their label counts. The old single row per project is dropped:
    the next retrains rebuild the history."""
    db.execute("DROP TABLE stop_predictions")
    db.execute(
        """
        CREATE TABLE stop_predictions (
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            version INTEGER NOT NULL,
            n_labels INTEGER NOT NULL,
            predictions TEXT NOT NULL,            -- JSON {item_id: predicted label}
            PRIMARY KEY (project_id, version)
        )
        """
    )


def _item_predictions(db):
    """The latest model's prediction for each labeled item, so label errors can be looked up
    (GET /api/projects/<id>/items?disagree=1). ``held_out`` 1: an out-of-fold prediction, made by a model
    that never saw the item's label (what finds a wrong label); 0: the full model's, for items every fold
    trained on. A retrain replaces the project's rows with the queue, in the same transaction."""
    db.execute(
        """
        CREATE TABLE item_predictions (
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            model_version INTEGER NOT NULL,
            predicted TEXT NOT NULL,              -- JSON: the predicted label
            confidence REAL NOT NULL,
            held_out INTEGER NOT NULL,
            PRIMARY KEY (project_id, item_id)
        )
        """
    )


def _webhooks(db):
    """Webhooks: the URLs a project posts its events to, the outbox of deliveries and the log of attempts.

    An event's outbox rows are written in the transaction that records the event (an answer, a model
    version), so an event is delivered if and only if it happened, whatever crashes in between. A row
    is ``pending`` until delivered or given up (``failed``); a sender claims it until ``claimed_until``
    (epoch seconds) so two processes on one database never post it twice at once, and a claim left by
    a process that died runs out on its own.
    """
    db.execute(
        """
        CREATE TABLE webhooks (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            url TEXT NOT NULL,
            events TEXT NOT NULL,                 -- JSON list of event names
            secret TEXT NOT NULL,                 -- signs the bodies; never shown again after creation
            created_by TEXT,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        )
        """
    )
    db.execute("CREATE INDEX webhooks_project ON webhooks(project_id)")
    db.execute(
        """
        CREATE TABLE webhook_outbox (
            id INTEGER PRIMARY KEY,
            hook_id INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            event TEXT NOT NULL,
            delivery_id TEXT NOT NULL UNIQUE,
            body TEXT NOT NULL,                   -- the exact bytes signed and posted, on every attempt
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            claimed_until REAL,
            created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        )
        """
    )
    db.execute("CREATE INDEX webhook_outbox_due ON webhook_outbox(next_attempt_at) WHERE state = 'pending'")
    db.execute("CREATE INDEX webhook_outbox_project ON webhook_outbox(project_id, id)")
    db.execute(
        """
        CREATE TABLE webhook_attempts (
            id INTEGER PRIMARY KEY,
            outbox_id INTEGER NOT NULL REFERENCES webhook_outbox(id) ON DELETE CASCADE,
            attempt INTEGER NOT NULL,
            status_code INTEGER,                  -- NULL: no HTTP answer (refused, unreachable, timed out)
            error TEXT,                           -- NULL: delivered (a 2xx answer)
            duration_ms INTEGER,
            at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
        )
        """
    )
    db.execute("CREATE INDEX webhook_attempts_outbox ON webhook_attempts(outbox_id, attempt)")


def _provenance(db):
    """What an export's provenance needs to say how each labeled item came to be labeled.

    ``queue.selection_prob`` is the probability the retrain's draw had of putting the item in the queue's
    part it holds (NULL where it is not known: see assay.learning.propensity). ``servings`` keeps, per
    annotator and item, the most recent pick that put the item in front of that annotator (a lease
    handed back on a reload is not a pick): where it came from, the model version and its score, that
    probability, and how many items were labeled then. ``served`` stays what the accuracy estimate reads.
    """
    db.execute("ALTER TABLE queue ADD COLUMN selection_prob REAL")
    db.execute(
        """
        CREATE TABLE servings (
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            item_id INTEGER NOT NULL REFERENCES items(id) ON DELETE CASCADE,
            annotator TEXT NOT NULL,
            strategy TEXT NOT NULL,               -- the queue's mark: a strategy, 'audit', '... (beyond the batch)'
            score REAL,
            model_version INTEGER,                -- NULL: random fill, no queue behind it
            selection_prob REAL,
            labeled INTEGER NOT NULL,             -- the project's labeled items when it was served
            served_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
            PRIMARY KEY (item_id, annotator)
        )
        """
    )


def _jobs(db):
    """Retrain requests as rows, so that worker processes (``assay worker``) anywhere can claim them.

    At most one queued job per project: a request while one waits joins it. A claim sets ``claimed_by`` and a
    lease (``claimed_until``, epoch seconds) that the worker's heartbeat pushes on; a lapsed lease makes a
    running job claimable again. ``stage`` and ``fraction`` are the running job's progress, for the pages.
    """
    db.execute(
        """
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
            state TEXT NOT NULL DEFAULT 'queued',  -- queued | running | done | failed
            attempts INTEGER NOT NULL DEFAULT 0,   -- claims so far (a retaken job counts again)
            claimed_by TEXT,
            claimed_until REAL,
            heartbeat_at REAL,
            stage TEXT,
            fraction REAL,
            created_at REAL NOT NULL,
            started_at REAL,
            finished_at REAL,
            error TEXT
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX jobs_one_queued ON jobs(project_id) WHERE state = 'queued'")
    db.execute("CREATE UNIQUE INDEX jobs_one_running ON jobs(project_id) WHERE state = 'running'")
    db.execute("CREATE INDEX jobs_open ON jobs(state, id) WHERE state IN ('queued', 'running')")


def _import_host(db):
    """An import's process id means something only on the machine it ran on: servers on several machines
    (sharing PostgreSQL) must not take another machine's running import for dead. Rows from before have
    no host and are judged as before."""
    db.execute("ALTER TABLE imports ADD COLUMN host TEXT")


def _featurizing(db):
    """Featurizing goes on beside retrains (assay.learning.featcache): a version ranks the share of the pool
    embedded by then. ``model_versions.ranked`` is how many pool items it ranked (NULL: all ``pool_size``,
    as every version before this); ``featurizing`` is each project's progress, written by whoever runs its
    jobs, read by the pages (``done`` of ``total`` items embedded)."""
    db.execute("ALTER TABLE model_versions ADD COLUMN ranked INTEGER")
    db.execute(
        """
        CREATE TABLE featurizing (
            project_id INTEGER PRIMARY KEY REFERENCES projects(id) ON DELETE CASCADE,
            done INTEGER NOT NULL,
            total INTEGER NOT NULL,
            updated_at REAL NOT NULL
        )
        """
    )


def _content_hash(db):
    """Exact duplicates (twins): each item's content hash (assay.store.items.content_hash), computed for the
    items already there, with an index to find an item's twins. A label given on one twin is given to the others
    too, as an answer whose source is ``twin of item N`` (assay.store.answers)."""
    from .hashing import content_hash

    db.execute("ALTER TABLE items ADD COLUMN content_hash TEXT")
    last = 0
    while True:
        rows = db.execute("SELECT id, data FROM items WHERE id > ? ORDER BY id LIMIT 5000", (last,)).fetchall()
        if not rows:
            break
        db.conn.executemany("UPDATE items SET content_hash = ? WHERE id = ?",
                            [(content_hash(json.loads(data)), item_id) for item_id, data in rows])
        last = rows[-1][0]
    db.execute("CREATE INDEX items_content ON items(project_id, content_hash)")


def _zero_shot(db):
    """Issue 28: the label names' suggestions.

    ``projects.label_descriptions``: a JSON object {label: one-line description} or NULL. ``annotations.suggested``:
    the label the page suggested for this answer (the served prediction's first guess, when the page showed
    one; NULL: none shown); ``annotations.accepted``: 1 when the answer is the suggestion, 0 when the annotator
    answered otherwise, NULL when nothing was suggested.
    """
    db.execute("ALTER TABLE projects ADD COLUMN label_descriptions TEXT")
    db.execute("ALTER TABLE annotations ADD COLUMN suggested TEXT")
    db.execute("ALTER TABLE annotations ADD COLUMN accepted INTEGER")


def _served_guesses(db):
    """Issue 27: ``served.top``, the served prediction's first guesses as the queue held them (JSON
    [[label, probability], ...], best first; NULL for servings recorded before): the accuracy estimate fits
    its temperature on them (assay.evaluation.temperature)."""
    db.execute("ALTER TABLE served ADD COLUMN top TEXT")


MIGRATIONS = [
    ("0001_initial", _initial),
    ("0002_accounts", _accounts),
    ("0003_counters", _counters),
    ("0004_imports", _imports),
    ("0005_session_generation", _session_generation),
    ("0006_project_keys", _project_keys),
    ("0007_evaluation", _evaluation),
    ("0008_stop_history", _stop_history),
    ("0009_item_predictions", _item_predictions),
    ("0010_webhooks", _webhooks),
    ("0011_provenance", _provenance),
    ("0012_jobs", _jobs),
    ("0013_import_host", _import_host),
    ("0014_featurizing", _featurizing),
    ("0015_content_hash", _content_hash),
    ("0016_zero_shot", _zero_shot),
    ("0017_served_guesses", _served_guesses),
]
