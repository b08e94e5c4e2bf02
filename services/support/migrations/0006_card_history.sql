-- A card's history after production, for the order page: each card.produced (a lost
-- card's replacement is a second card of the order) and each card.status (SUSPENDED,
-- REVOKED, EXPIRED, ACTIVE again), kept once by event id.
CREATE TABLE card_history (
    event_id     uuid PRIMARY KEY,
    order_id     text NOT NULL,
    card_number  text NOT NULL,
    event        text NOT NULL CHECK (event IN ('produced', 'status')),
    status       text NOT NULL CHECK (status IN ('ACTIVE', 'SUSPENDED', 'REVOKED', 'EXPIRED')),
    reasons      jsonb NOT NULL DEFAULT '[]'::jsonb,
    valid_until  date NOT NULL,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX card_history_order ON card_history (order_id, occurred_at);
