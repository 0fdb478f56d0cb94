//! Versioned migrations. Each entry is applied once, in order, in its own transaction, and
//! recorded in `schema_migrations`. Shipped migrations never change; add a new one.

use std::path::Path;

use rusqlite::Connection;

use super::StoreError;

/// The migrations, oldest first; the schema version is the number of entries applied.
const MIGRATIONS: &[&str] = &[
    // 1: agents, enrollment tokens, CIs (one per host, by machine-id for now), reports.
    r#"
    CREATE TABLE enroll_tokens (
        hash        TEXT PRIMARY KEY,      -- sha256 of the token; the token itself is never stored
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        uses_total  INTEGER NOT NULL,
        uses_left   INTEGER NOT NULL
    );
    CREATE TABLE cis (
        id             INTEGER PRIMARY KEY,
        identity_key   TEXT NOT NULL UNIQUE, -- 'machine-id:<id>' or 'agent:<id>'
        name           TEXT NOT NULL,
        class          TEXT NOT NULL,
        fqdn           TEXT NOT NULL DEFAULT '',
        os_name        TEXT NOT NULL DEFAULT '',
        os_version     TEXT NOT NULL DEFAULT '',
        kernel         TEXT NOT NULL DEFAULT '',
        arch           TEXT NOT NULL DEFAULT '',
        machine_id     TEXT NOT NULL DEFAULT '',
        agent_version  TEXT NOT NULL DEFAULT '',
        first_seen_at  INTEGER NOT NULL,
        last_seen_at   INTEGER NOT NULL,
        latest_at      INTEGER,              -- collected_at of latest_report
        latest_version INTEGER,              -- protocol version of latest_report
        latest_report  BLOB                  -- postcard MetricsReport of that version
    );
    CREATE INDEX cis_name ON cis(name);
    CREATE TABLE agents (
        id            TEXT PRIMARY KEY,
        hostname      TEXT NOT NULL,
        machine_id    TEXT NOT NULL,
        cert_serial   TEXT NOT NULL,
        enrolled_at   INTEGER NOT NULL,
        revoked_at    INTEGER,
        last_seen_at  INTEGER,
        last_seq      INTEGER,
        ci_id         INTEGER REFERENCES cis(id)
    );
    CREATE TABLE reports (
        id            INTEGER PRIMARY KEY,
        agent_id      TEXT NOT NULL,
        seq           INTEGER NOT NULL,
        ci_id         INTEGER NOT NULL REFERENCES cis(id),
        collected_at  INTEGER NOT NULL,
        received_at   INTEGER NOT NULL,
        version       INTEGER NOT NULL,
        body          BLOB NOT NULL,
        UNIQUE (agent_id, seq)
    );
    CREATE INDEX reports_ci_time ON reports(ci_id, collected_at);
    CREATE INDEX reports_received ON reports(received_at);
    "#,
    // 2: a report writes only its own row. The latest report, "last seen" and the last sequence
    // number are read through the reports' indexes instead of being copied into the CI and agent
    // rows on every report (which wrote ~6 KB of pages per 0.9 KB report).
    r#"
    ALTER TABLE cis DROP COLUMN last_seen_at;
    ALTER TABLE cis DROP COLUMN latest_at;
    ALTER TABLE cis DROP COLUMN latest_version;
    ALTER TABLE cis DROP COLUMN latest_report;
    ALTER TABLE cis ADD COLUMN identity_at INTEGER NOT NULL DEFAULT 0; -- collected_at of the report the identity fields come from
    ALTER TABLE agents DROP COLUMN last_seen_at;
    ALTER TABLE agents DROP COLUMN last_seq;
    "#,
    // 3: a report's only randomly placed write is its (agent, seq) uniqueness entry, keyed by a
    // small integer: agents get a stable integer key `num` (an explicit INTEGER PRIMARY KEY, so
    // VACUUM cannot renumber it), reports refer to it instead of repeating the agent's text id,
    // and the (ci_id, collected_at) index is gone: a CI's latest report is its agents' highest
    // sequence number. Every other write of a report appends (rowid, received_at). `kind` is the
    // payload kind (0 metrics, 1 inventory).
    r#"
    CREATE TABLE agents_new (
        num          INTEGER PRIMARY KEY,
        id           TEXT NOT NULL UNIQUE,
        hostname     TEXT NOT NULL,
        machine_id   TEXT NOT NULL,
        cert_serial  TEXT NOT NULL,
        enrolled_at  INTEGER NOT NULL,
        revoked_at   INTEGER,
        ci_id        INTEGER REFERENCES cis(id)
    );
    INSERT INTO agents_new (id, hostname, machine_id, cert_serial, enrolled_at, revoked_at, ci_id)
        SELECT id, hostname, machine_id, cert_serial, enrolled_at, revoked_at, ci_id FROM agents ORDER BY enrolled_at, id;
    CREATE TABLE reports_new (
        id            INTEGER PRIMARY KEY,
        agent         INTEGER NOT NULL,      -- agents.num
        seq           INTEGER NOT NULL,
        kind          INTEGER NOT NULL DEFAULT 0,
        ci_id         INTEGER NOT NULL REFERENCES cis(id),
        collected_at  INTEGER NOT NULL,
        received_at   INTEGER NOT NULL,
        version       INTEGER NOT NULL,
        body          BLOB NOT NULL,
        UNIQUE (agent, seq)
    );
    INSERT INTO reports_new (id, agent, seq, ci_id, collected_at, received_at, version, body)
        SELECT r.id, a.num, r.seq, r.ci_id, r.collected_at, r.received_at, r.version, r.body
        FROM reports r JOIN agents_new a ON a.id = r.agent_id ORDER BY r.id;
    DROP TABLE reports;
    DROP TABLE agents;
    ALTER TABLE agents_new RENAME TO agents;
    ALTER TABLE reports_new RENAME TO reports;
    CREATE INDEX reports_received ON reports(received_at);
    CREATE INDEX agents_ci ON agents(ci_id);
    "#,
    // 4: inventory. The newest full inventory per CI (postcard `Inventory` of its protocol
    // version), its software as rows for "which hosts run X", asset and warranty data (from the
    // host's asset file or an import), hardware identity on the CI, and the CI's change history.
    r#"
    CREATE TABLE ci_inventory (
        ci_id         INTEGER PRIMARY KEY REFERENCES cis(id),
        agent         INTEGER NOT NULL,      -- agents.num of the sender
        content_hash  TEXT NOT NULL,
        collected_at  INTEGER NOT NULL,
        received_at   INTEGER NOT NULL,      -- the last full inventory or unchanged marker
        version       INTEGER NOT NULL,
        body          BLOB NOT NULL
    );
    CREATE TABLE ci_software (
        ci_id         INTEGER NOT NULL REFERENCES cis(id),
        source        TEXT NOT NULL,
        name          TEXT NOT NULL,
        arch          TEXT NOT NULL,
        version       TEXT NOT NULL,
        publisher     TEXT NOT NULL,
        installed_at  INTEGER,
        size_bytes    INTEGER,
        PRIMARY KEY (ci_id, source, name, arch, version)
    ) WITHOUT ROWID;
    CREATE INDEX ci_software_name ON ci_software(name);
    CREATE TABLE ci_assets (
        ci_id             INTEGER PRIMARY KEY REFERENCES cis(id),
        asset_tag         TEXT NOT NULL DEFAULT '',
        owner             TEXT NOT NULL DEFAULT '',
        location          TEXT NOT NULL DEFAULT '',
        cost_centre       TEXT NOT NULL DEFAULT '',
        purchase_date     TEXT NOT NULL DEFAULT '',  -- YYYY-MM-DD
        warranty_end      TEXT NOT NULL DEFAULT '',  -- YYYY-MM-DD
        supplier          TEXT NOT NULL DEFAULT '',
        support_contract  TEXT NOT NULL DEFAULT '',
        updated_at        INTEGER NOT NULL,
        updated_by        TEXT NOT NULL              -- 'agent' or 'import <file>'
    );
    CREATE INDEX ci_assets_tag ON ci_assets(asset_tag) WHERE asset_tag != '';
    CREATE INDEX ci_assets_warranty ON ci_assets(warranty_end) WHERE warranty_end != '';
    CREATE TABLE ci_history (
        id       INTEGER PRIMARY KEY,
        ci_id    INTEGER NOT NULL REFERENCES cis(id),
        at       INTEGER NOT NULL,
        kind     TEXT NOT NULL,                   -- 'software', 'hardware', 'asset', ...
        summary  TEXT NOT NULL,
        detail   TEXT NOT NULL DEFAULT '{}'       -- JSON
    );
    CREATE INDEX ci_history_ci ON ci_history(ci_id, at);
    ALTER TABLE cis ADD COLUMN vendor TEXT NOT NULL DEFAULT '';
    ALTER TABLE cis ADD COLUMN product TEXT NOT NULL DEFAULT '';
    ALTER TABLE cis ADD COLUMN serial TEXT NOT NULL DEFAULT '';
    ALTER TABLE cis ADD COLUMN hw_uuid TEXT NOT NULL DEFAULT '';
    CREATE INDEX cis_serial ON cis(serial) WHERE serial != '';
    "#,
    // 5: identification. Each CI's current identifiers (UUID, serial, MACs, machine-ids, names)
    // for matching reports to CIs; the conflict queue for matches that cannot be decided safely;
    // pairs an admin declared different machines.
    r#"
    CREATE TABLE ci_identifiers (
        kind   TEXT NOT NULL,     -- 'uuid', 'serial', 'mac', 'machine_id', 'hostname', 'fqdn'
        value  TEXT NOT NULL,
        ci_id  INTEGER NOT NULL REFERENCES cis(id),
        PRIMARY KEY (kind, value, ci_id)
    ) WITHOUT ROWID;
    CREATE INDEX ci_identifiers_ci ON ci_identifiers(ci_id);
    CREATE TABLE ci_conflicts (
        id           INTEGER PRIMARY KEY,
        created_at   INTEGER NOT NULL,
        agent_id     TEXT NOT NULL,
        ci_id        INTEGER NOT NULL,   -- where the agent's reports go until resolved
        candidates   TEXT NOT NULL,      -- JSON array of CI ids
        rule         TEXT NOT NULL,
        reason       TEXT NOT NULL,
        resolved_at  INTEGER,
        resolution   TEXT
    );
    CREATE INDEX ci_conflicts_open ON ci_conflicts(agent_id) WHERE resolved_at IS NULL;
    CREATE TABLE ci_distinct (
        a  INTEGER NOT NULL,
        b  INTEGER NOT NULL,
        PRIMARY KEY (a, b)
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO ci_identifiers (kind, value, ci_id)
        SELECT 'machine_id', machine_id, ci_id FROM agents WHERE ci_id IS NOT NULL AND machine_id != '';
    INSERT OR IGNORE INTO ci_identifiers (kind, value, ci_id)
        SELECT 'hostname', lower(name), id FROM cis WHERE name != '';
    INSERT OR IGNORE INTO ci_identifiers (kind, value, ci_id)
        SELECT 'fqdn', lower(fqdn), id FROM cis WHERE fqdn != '';
    "#,
    // 6: history says where each change came from; typed relationships between CIs; tags;
    // class-specific attributes (JSON). Business services are CIs of class 'service'.
    r#"
    ALTER TABLE ci_history ADD COLUMN source TEXT NOT NULL DEFAULT 'agent';  -- agent, snmp, import, admin
    UPDATE ci_history SET source = 'import' WHERE kind = 'asset' AND summary LIKE 'asset data from import%';
    UPDATE ci_history SET source = 'admin' WHERE summary LIKE '%by an admin%';
    CREATE INDEX ci_history_at ON ci_history(at);
    CREATE TABLE ci_relations (
        from_ci     INTEGER NOT NULL REFERENCES cis(id),
        kind        TEXT NOT NULL,      -- runs_on, installed_on, connected_to, depends_on, member_of
        to_ci       INTEGER NOT NULL REFERENCES cis(id),
        source      TEXT NOT NULL,      -- admin, agent, snmp, import
        created_at  INTEGER NOT NULL,
        PRIMARY KEY (from_ci, kind, to_ci)
    ) WITHOUT ROWID;
    CREATE INDEX ci_relations_to ON ci_relations(to_ci, kind);
    CREATE TABLE ci_tags (
        ci_id  INTEGER NOT NULL REFERENCES cis(id),
        tag    TEXT NOT NULL,
        PRIMARY KEY (ci_id, tag)
    ) WITHOUT ROWID;
    CREATE INDEX ci_tags_tag ON ci_tags(tag);
    ALTER TABLE cis ADD COLUMN attributes TEXT NOT NULL DEFAULT '{}';
    CREATE INDEX cis_class ON cis(class);
    "#,
    // 7: the virtual machines a hypervisor host declares (libvirt, Proxmox), by SMBIOS UUID, so
    // the guest's CI `runs_on` the host whichever of the two reports first.
    r#"
    CREATE TABLE ci_guests (
        host_ci  INTEGER NOT NULL REFERENCES cis(id),
        uuid     TEXT NOT NULL,   -- canonical (see cmdb::identify::canonical_uuid)
        name     TEXT NOT NULL,
        PRIMARY KEY (host_ci, uuid)
    ) WITHOUT ROWID;
    CREATE INDEX ci_guests_uuid ON ci_guests(uuid);
    "#,
    // 8: "which hosts run X" without one random index write per package on a host's first
    // inventory. `ci_software` is keyed (ci_id, name, ...) so a host's package is one seek, and
    // the name index is a separate table, one entry per (name, CI), that a host's first (or
    // wholesale changed) inventory joins in sorted batches: until then the CI is listed in
    // `ci_software_unindexed`, which queries by name also look through (see
    // store::software_index).
    r#"
    CREATE TABLE ci_software_v8 (
        ci_id         INTEGER NOT NULL REFERENCES cis(id),
        source        TEXT NOT NULL,
        name          TEXT NOT NULL,
        arch          TEXT NOT NULL,
        version       TEXT NOT NULL,
        publisher     TEXT NOT NULL,
        installed_at  INTEGER,
        size_bytes    INTEGER,
        PRIMARY KEY (ci_id, name, source, arch, version)
    ) WITHOUT ROWID;
    INSERT INTO ci_software_v8 SELECT ci_id, source, name, arch, version, publisher, installed_at, size_bytes FROM ci_software;
    DROP TABLE ci_software;
    ALTER TABLE ci_software_v8 RENAME TO ci_software;
    CREATE TABLE ci_software_by_name (
        name   TEXT NOT NULL,
        ci_id  INTEGER NOT NULL,
        PRIMARY KEY (name, ci_id)
    ) WITHOUT ROWID;
    INSERT INTO ci_software_by_name SELECT DISTINCT name, ci_id FROM ci_software ORDER BY name, ci_id;
    CREATE TABLE ci_software_unindexed (
        ci_id  INTEGER PRIMARY KEY,
        since  INTEGER NOT NULL
    );
    "#,
    // 9: SNMP. Polled devices (targets, their credentials sealed with a key kept outside the
    // database: see secrets.rs), their poll results over time, and the port-level topology
    // (LLDP, CDP, forwarding tables) behind `connected_to` relationships.
    r#"
    CREATE TABLE snmp_targets (
        id             INTEGER PRIMARY KEY,
        host           TEXT NOT NULL,
        port           INTEGER NOT NULL,
        version        TEXT NOT NULL,             -- v1, v2c, v3
        user           TEXT NOT NULL DEFAULT '',  -- v3 security name (not a secret)
        credentials    BLOB NOT NULL,             -- sealed, context 'snmp-target:HOST:PORT'
        interval_secs  INTEGER NOT NULL,
        origin         TEXT NOT NULL,             -- admin, config, discover
        added_at       INTEGER NOT NULL,
        ci_id          INTEGER REFERENCES cis(id),
        status         TEXT NOT NULL DEFAULT 'pending',  -- pending, ok, unreachable, auth_failed, config_error, error
        status_detail  TEXT NOT NULL DEFAULT '',
        status_since   INTEGER,
        last_poll_at   INTEGER,
        last_ok_at     INTEGER,
        UNIQUE (host, port)
    );
    CREATE TABLE device_samples (
        id     INTEGER PRIMARY KEY,
        ci_id  INTEGER NOT NULL REFERENCES cis(id),
        at     INTEGER NOT NULL,
        body   TEXT NOT NULL                      -- JSON: interface rates and status, CPU, storage
    );
    CREATE INDEX device_samples_ci ON device_samples(ci_id, at);
    CREATE INDEX device_samples_at ON device_samples(at);
    CREATE TABLE ci_links (
        from_ci    INTEGER NOT NULL REFERENCES cis(id),
        from_port  TEXT NOT NULL,
        to_ci      INTEGER NOT NULL REFERENCES cis(id),
        to_port    TEXT NOT NULL,
        via        TEXT NOT NULL,                 -- lldp, cdp, fdb
        device     INTEGER NOT NULL,              -- the polled device that reported it
        seen_at    INTEGER NOT NULL,
        PRIMARY KEY (device, via, from_ci, from_port, to_ci, to_port)
    ) WITHOUT ROWID;
    CREATE INDEX ci_links_from ON ci_links(from_ci);
    CREATE INDEX ci_links_to ON ci_links(to_ci);
    "#,
    // 10: events. One row per (rule, CI, instance) occurrence, open until resolved (a partial
    // unique index keeps it to one open event per key); every state or severity change is a
    // transition row; silences and recurring maintenance windows, kept when removed (history).
    r#"
    CREATE TABLE events (
        id               INTEGER PRIMARY KEY,
        rule             TEXT NOT NULL,
        ci_id            INTEGER NOT NULL REFERENCES cis(id),
        instance         TEXT NOT NULL DEFAULT '',
        state            TEXT NOT NULL,          -- pending, firing, flapping, resolved
        severity         TEXT NOT NULL,          -- warning, critical
        summary          TEXT NOT NULL,
        description      TEXT NOT NULL,
        first_seen_at    INTEGER NOT NULL,
        last_seen_at     INTEGER NOT NULL,
        count            INTEGER NOT NULL DEFAULT 1,   -- transitions into firing
        value            REAL,
        threshold        REAL,
        acknowledged_at  INTEGER,
        acknowledged_by  TEXT,
        resolved_at      INTEGER,
        resolved_reason  TEXT,
        silenced_by      TEXT,                   -- why it is not escalated (silence, window)
        escalated_at     INTEGER,                -- when it went (or would go) to the service desk
        symptom_of       INTEGER REFERENCES events(id)
    );
    CREATE UNIQUE INDEX events_open ON events(rule, ci_id, instance) WHERE state != 'resolved';
    CREATE INDEX events_state ON events(state, last_seen_at);
    CREATE INDEX events_ci ON events(ci_id, first_seen_at);
    CREATE TABLE event_transitions (
        event_id    INTEGER NOT NULL REFERENCES events(id),
        at          INTEGER NOT NULL,
        from_state  TEXT,
        to_state    TEXT NOT NULL,
        severity    TEXT NOT NULL,
        value       REAL,
        threshold   REAL,
        note        TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX event_transitions_event ON event_transitions(event_id, at);
    CREATE TABLE silences (
        id          INTEGER PRIMARY KEY,
        kind        TEXT NOT NULL,              -- silence, window
        matcher     TEXT NOT NULL,              -- JSON: ci, service or selector
        starts_at   INTEGER,
        ends_at     INTEGER,
        recurrence  TEXT NOT NULL DEFAULT '',   -- windows: e.g. 'every sunday 02:00-04:00'
        reason      TEXT NOT NULL,
        created_by  TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        removed_at  INTEGER
    );
    "#,
    // 11: tickets. The outbox: what each escalated event's transitions ask of the service desk,
    // written in the same transaction as the event change and delivered per (event key,
    // connector) in id order; dead rows wait for an admin's retry. The external ticket of
    // each event on each connector, stored the moment it is known.
    r#"
    CREATE TABLE ticket_outbox (
        id          INTEGER PRIMARY KEY,
        event_id    INTEGER NOT NULL REFERENCES events(id),
        event_key   TEXT NOT NULL,               -- rule, CI, instance: delivery order per key
        connector   TEXT NOT NULL,
        queue       TEXT NOT NULL DEFAULT '',
        op          TEXT NOT NULL,               -- open, comment, acknowledge, resolve
        note        TEXT NOT NULL DEFAULT '',
        created_at  INTEGER NOT NULL,
        state       TEXT NOT NULL DEFAULT 'pending',  -- pending, done, dead
        attempts    INTEGER NOT NULL DEFAULT 0,
        next_at     INTEGER NOT NULL,
        sent_at     INTEGER,                     -- a create was sent: its outcome may be unknown
        done_at     INTEGER,
        last_error  TEXT
    );
    CREATE INDEX ticket_outbox_due ON ticket_outbox(next_at) WHERE state = 'pending';
    CREATE INDEX ticket_outbox_order ON ticket_outbox(event_key, connector, id) WHERE state != 'done';
    CREATE INDEX ticket_outbox_event ON ticket_outbox(event_id, op);
    CREATE TABLE tickets (
        event_id         INTEGER NOT NULL REFERENCES events(id),
        connector        TEXT NOT NULL,
        external_id      TEXT NOT NULL,
        display          TEXT NOT NULL DEFAULT '',
        correlation_key  TEXT NOT NULL,
        event_key        TEXT NOT NULL,
        status           TEXT NOT NULL,          -- open, resolved
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        resolved_at      INTEGER,
        PRIMARY KEY (event_id, connector)
    );
    CREATE INDEX tickets_key ON tickets(event_key, connector, resolved_at);
    "#,
    // 12: what each agent says about itself. Counters kept as reports arrive (a count of the
    // reports table would shrink with pruning), the spool backlog and drops the agent reports
    // with each report, and its certificate's expiry for renewal.
    r#"
    ALTER TABLE agents ADD COLUMN reports_received INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE agents ADD COLUMN last_seen_at INTEGER;
    ALTER TABLE agents ADD COLUMN last_seq INTEGER;
    ALTER TABLE agents ADD COLUMN spool_backlog INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE agents ADD COLUMN spool_bytes INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE agents ADD COLUMN spool_oldest_at INTEGER;
    ALTER TABLE agents ADD COLUMN spool_dropped INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE agents ADD COLUMN cert_expires_at INTEGER;
    ALTER TABLE agents ADD COLUMN cert_renewed_at INTEGER;
    ALTER TABLE agents ADD COLUMN prev_cert_serial TEXT;   -- accepted until the new one is used
    UPDATE agents SET
        last_seen_at = (SELECT MAX(r.received_at) FROM reports r WHERE r.agent = agents.num),
        last_seq = (SELECT MAX(r.seq) FROM reports r WHERE r.agent = agents.num),
        reports_received = (SELECT COUNT(*) FROM reports r WHERE r.agent = agents.num);
    "#,
    // 13: named admin tokens, stored by hash only; revocable and optionally expiring. The
    // token `init` writes to admin.token is registered as `local` at the first start.
    r#"
    CREATE TABLE admin_tokens (
        name          TEXT PRIMARY KEY,
        hash          TEXT NOT NULL UNIQUE,
        created_at    INTEGER NOT NULL,
        expires_at    INTEGER,
        revoked_at    INTEGER,
        last_used_at  INTEGER
    );
    "#,
];

/// The schema version this build creates.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    migrate_to(conn, path, SCHEMA_VERSION)
}

/// Applies migrations up to `target` (tests build databases of older versions with it).
pub(super) fn migrate_to(
    conn: &mut Connection,
    path: &Path,
    target: i64,
) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |r| r.get(0),
    )?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: current,
            known: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
        .take(usize::try_from(target - current).unwrap_or(0))
    {
        let version = index as i64 + 1;
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            (version, crate::now_ms()),
        )?;
        tx.commit()?;
        tracing::info!(version, "database migrated");
    }
    Ok(())
}
