-- One notification per order, revision and status, whatever is redelivered.
CREATE TABLE notifications (
    order_id     text NOT NULL,
    revision     integer NOT NULL,
    status       text NOT NULL,
    event_id     uuid NOT NULL,
    reasons      jsonb NOT NULL DEFAULT '[]'::jsonb,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, revision, status)
);

-- What production reported about each card, for the PRODUCED message.
CREATE TABLE cards (
    order_id     text PRIMARY KEY,
    card_number  text NOT NULL,
    issued_on    date NOT NULL,
    valid_until  date NOT NULL
);
