"""Customers' data (CONTRACT.md 7.6): everything held about a customer, and its erasure.

- ``finding``: the customer a card number, QR text or email names (deleted ones too), and
  the refusals of this package;
- ``export``: everything held about a customer, as JSON values; secrets (QR and link tokens,
  the pass's authentication token, push tokens) are named by their existence or masked;
- ``erasure``: the customer's personal data replaced by a pseudonym, their cards deactivated
  through the engine, their public links closed (see its docstring);
- ``push_tokens``: the erased customers' Apple push tokens, replaced once the void passes
  were pushed (the wallet sync calls it after its pushes).

``loyalty customer export|erase`` and the admin's customer page use these, nothing else.
Logs name a customer by id only. The modules are imported one by one (the wallet sync needs
``push_tokens`` only): nothing is imported here.
"""
