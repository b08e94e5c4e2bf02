"""production: allocates the card number and records the card for approved orders."""
