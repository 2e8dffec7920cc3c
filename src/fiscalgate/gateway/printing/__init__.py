"""The printed invoice in the gateway: `GET /v1/invoices/{id}/pdf`, and `print_invoice` for the console."""
