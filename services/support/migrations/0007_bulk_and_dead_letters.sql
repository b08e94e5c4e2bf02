-- Bulk replays (services/support/bulk.py): a job per filter a supervisor confirmed, and
-- each of its orders with the command sent for it. The command id is derived from the job
-- and the order, so a job resumed after a restart sends no order twice.
CREATE TABLE bulk_jobs (
    job_id       uuid PRIMARY KEY,
    actor        text NOT NULL,
    reason       text,
    filter       jsonb NOT NULL,
    total        integer NOT NULL,
    rate         double precision NOT NULL,  -- commands per second at most
    created_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz
);

CREATE TABLE bulk_job_orders (
    job_id      uuid NOT NULL REFERENCES bulk_jobs (job_id),
    seq         integer NOT NULL,
    order_id    text NOT NULL,
    from_status text NOT NULL,
    stage       text,
    command_id  uuid NOT NULL UNIQUE,
    sent_at     timestamptz,  -- NULL: not sent yet
    PRIMARY KEY (job_id, seq)
);
CREATE INDEX bulk_job_orders_pending ON bulk_job_orders (job_id, seq) WHERE sent_at IS NULL;

-- Every service's dead letters (hmskort.<service>.dlt.v1), as their DLT records say (the
-- table `dead_letters` is support's own, as in every schema): the
-- raw bytes stay with the service; `preview` is the record's redacted start of them.
CREATE TABLE service_dead_letters (
    service          text NOT NULL,
    dead_letter_id   bigint NOT NULL,
    origin_topic     text NOT NULL,
    delivered_on     text NOT NULL,
    kafka_partition  integer NOT NULL,
    kafka_offset     bigint NOT NULL,
    attempt          integer NOT NULL DEFAULT 0,
    error            jsonb NOT NULL,
    reasons          text[] NOT NULL DEFAULT '{}',
    order_id         text,
    failed_at        timestamptz NOT NULL,
    sha256           text NOT NULL,
    size             integer NOT NULL,
    preview          text,
    PRIMARY KEY (service, dead_letter_id)
);
CREATE INDEX service_dead_letters_failed ON service_dead_letters (failed_at);

-- The re-drive commands support sent (the owning service's outcome comes back on
-- command.handled, by command id).
CREATE TABLE redrives (
    command_id      uuid PRIMARY KEY,
    service         text NOT NULL,
    dead_letter_id  bigint NOT NULL,
    actor           text NOT NULL,
    sent_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX redrives_dead_letter ON redrives (service, dead_letter_id);
