-- Who to write to about each order revision, read leniently from order.submitted.
-- email is NULL when the submission had no usable address: no e-mail can be sent then.
CREATE TABLE contacts (
    order_id             text NOT NULL,
    revision             integer NOT NULL,
    email                text,
    employer_name        text,
    employer_org_number  text,
    worker_name          text,
    worker_birth_date    date,
    card_type            text,
    ordered_at           timestamptz NOT NULL,
    recorded_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, revision)
);

-- The e-mail of each notification, sent after the commit by the sender
-- (services/notify/sender.py): 'none' (this status gets no e-mail), 'pending', 'sent',
-- 'failed' (refused by the server, or the order never became known), 'no_address'.
ALTER TABLE notifications
    ADD COLUMN mail_state       text NOT NULL DEFAULT 'none'
        CHECK (mail_state IN ('none', 'pending', 'sent', 'failed', 'no_address')),
    ADD COLUMN recipient        text,
    ADD COLUMN message_id       text UNIQUE,
    ADD COLUMN message          bytea,
    ADD COLUMN attempts         integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN sent_at          timestamptz,
    ADD COLUMN last_error       text;

CREATE INDEX notifications_to_send ON notifications (next_attempt_at) WHERE mail_state = 'pending';
