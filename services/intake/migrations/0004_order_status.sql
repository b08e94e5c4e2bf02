-- intake's statuses of an order, as services/intake/orders.py names them (IntakeStatus):
-- the public statuses intake sets, and 'NEW', the placeholder row of an order whose first
-- event is being handled. A status outside them is a bug, stopped here.
ALTER TABLE orders ADD CONSTRAINT orders_status_known CHECK (
    status IN ('NEW', 'RECEIVED', 'DOCUMENTS_REJECTED', 'ACCEPTED', 'NEEDS_ATTENTION', 'CANCELLED')
);
