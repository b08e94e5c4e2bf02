-- The messaging tables every service schema has (design.md "Guarantees").

-- Inbox: one row per message handled, so a redelivered or duplicated message changes nothing.
-- message_id is "<event_id>:<attempt>" (a retry is a new delivery of the same event), or
-- "<topic>:<partition>:<offset>" for a message too broken to have a readable event id.
CREATE TABLE inbox (
    message_id  text PRIMARY KEY,
    topic       text NOT NULL,
    handled_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX inbox_handled_at ON inbox (handled_at);

-- Outbox: events written in the same transaction as the state change that caused them;
-- the relay publishes them in id order and deletes what Kafka has acknowledged.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    key         bytea,
    value       bytea NOT NULL,
    headers     jsonb NOT NULL DEFAULT '[]'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
