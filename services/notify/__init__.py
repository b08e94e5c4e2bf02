"""notify: tells the employer about every status change of an order."""
