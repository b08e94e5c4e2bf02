-- What registry_check needs to re-check an order by itself and on command.
ALTER TABLE checked_orders
    ADD COLUMN accepted       jsonb,        -- the order.accepted event, re-run on a re-check or replay
    ADD COLUMN waiting_since  timestamptz,  -- first "not yet in the register" of this revision
    ADD COLUMN next_check_at  timestamptz,  -- when a waiting order is checked again
    ADD COLUMN reported       text;         -- the last status and reasons told (STATUS:CODE,...)

CREATE INDEX checked_orders_due ON checked_orders (next_check_at)
    WHERE status = 'AWAITING_REGISTER' AND next_check_at IS NOT NULL;

-- Evidence: every check result, with the register that answered, what it answered
-- (minimised: no names, no national ids) and when.
CREATE TABLE check_evidence (
    id             bigserial PRIMARY KEY,
    evaluation_id  uuid NOT NULL,
    order_id       text NOT NULL,
    revision       integer NOT NULL,
    check_name     text NOT NULL,
    register       text,
    outcome        text NOT NULL,
    code           text,
    detail         text NOT NULL DEFAULT '',
    answer         jsonb NOT NULL DEFAULT '{}'::jsonb,
    checked_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX check_evidence_order ON check_evidence (order_id, revision, checked_at);

-- A person's decision that one check of one revision passes.
CREATE TABLE check_overrides (
    order_id    text NOT NULL,
    revision    integer NOT NULL,
    check_name  text NOT NULL,
    reason      text NOT NULL,
    actor       text NOT NULL,
    command_id  uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, revision, check_name)
);

-- Commands are audited in command_audit (shared/migrations/0002_command_audit.sql).
