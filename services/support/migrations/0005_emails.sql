-- From hmskort.order.emails.v1: what came of each e-mail notify sent an employer (sent,
-- refused, unconfirmed), with the address masked as notify publishes it (o***@firma.no).
CREATE TABLE emails (
    message_id        text PRIMARY KEY,
    order_id          text NOT NULL,
    revision          integer NOT NULL,
    kind              text NOT NULL,  -- the order status the e-mail told of
    language          text NOT NULL,
    recipient_masked  text NOT NULL,
    subject           text NOT NULL,
    sent_at           timestamptz NOT NULL,
    outcome           text NOT NULL CHECK (outcome IN ('sent', 'refused', 'unconfirmed')),
    attempts          integer NOT NULL
);
CREATE INDEX emails_order ON emails (order_id, sent_at);
