-- An e-mail that needs the order's submission or its card, which did not come while
-- its status was retried, is 'waiting' for it (waiting_for: 'submission' or 'card';
-- services/notify/notifications.py), no longer 'failed' with a marker in last_error.
-- A card that comes later completes a notification waiting for it.
ALTER TABLE notifications
    ADD COLUMN waiting_for text CHECK (waiting_for IN ('submission', 'card')),
    DROP CONSTRAINT notifications_mail_state_check;

UPDATE notifications SET mail_state = 'waiting', waiting_for = 'card', last_error = NULL
    WHERE mail_state = 'failed' AND last_error = 'notify.waiting_for_card';
UPDATE notifications SET mail_state = 'waiting', waiting_for = 'submission', last_error = NULL
    WHERE mail_state = 'failed' AND last_error = 'notify.waiting_for_submission';

ALTER TABLE notifications
    ADD CONSTRAINT notifications_mail_state_check CHECK (
        mail_state IN (
            'none', 'no_address', 'waiting', 'pending', 'sending', 'sent', 'unconfirmed', 'failed'
        )
    ),
    ADD CONSTRAINT notifications_waiting_for_check_state CHECK (
        (mail_state = 'waiting') = (waiting_for IS NOT NULL)
    );
