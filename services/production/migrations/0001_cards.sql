-- The card register: one card per order, numbers from a sequence that is never reused.
CREATE SEQUENCE card_number_seq START 1 NO CYCLE;

CREATE TABLE cards (
    card_number  text PRIMARY KEY,
    order_id     text NOT NULL UNIQUE,
    revision     integer NOT NULL,
    card_type    text NOT NULL,
    issued_on    date NOT NULL,
    valid_until  date NOT NULL,
    status       text NOT NULL DEFAULT 'ACTIVE' CHECK (status IN ('ACTIVE', 'BLOCKED', 'EXPIRED')),
    created_at   timestamptz NOT NULL DEFAULT now()
);
