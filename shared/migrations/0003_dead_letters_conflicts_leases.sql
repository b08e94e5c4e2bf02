-- Issue 8: dead letters out of Kafka, unpublishable outbox rows set aside, event id
-- conflicts, and leader leases. A new file: migrations that ran are never edited.

-- The digest of the content a message id was handled with: the same id with the same
-- digest is a duplicate (a no-op), with another digest a conflict (dead-lettered).
-- NULL for rows handled before this migration: those count as duplicates.
ALTER TABLE inbox ADD COLUMN digest text;

-- The raw bytes of every dead letter. The DLT record in Kafka carries only their sha256,
-- size and this row's id (a dead letter always fits, and personal data stays out of Kafka).
CREATE TABLE dead_letters (
    id            bigserial PRIMARY KEY,
    origin_topic  text NOT NULL,
    delivered_on  text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset  bigint NOT NULL,
    sha256        text NOT NULL,
    size          integer NOT NULL,
    payload       bytea NOT NULL,
    dead_at       timestamptz NOT NULL DEFAULT now()
);

-- Outbox rows Kafka refused for good (too large, invalid): moved here with the error so
-- that the rows behind them go on; support looks at them, nothing retries them.
CREATE TABLE outbox_failed (
    id          bigint PRIMARY KEY,
    topic       text NOT NULL,
    key         bytea,
    value       bytea NOT NULL,
    headers     jsonb NOT NULL,
    created_at  timestamptz NOT NULL,
    failed_at   timestamptz NOT NULL DEFAULT now(),
    error       text NOT NULL
);

-- Who leads each piece of one-at-a-time work (relay, spooler, sender): the backend pid of
-- the leader's connection, which holds the advisory lock, and when it last said it was
-- alive. A standby ends the session of a leader that stopped renewing (shared/leader.py).
CREATE TABLE leader_lease (
    name        text PRIMARY KEY,
    pid         integer NOT NULL,
    renewed_at  timestamptz NOT NULL DEFAULT now()
);
