"""The admin panel's reads and writes, one module per kind of record, apart from NiceGUI: the
pages call these, and an import contract keeps NiceGUI out of them.

- ``common``: the page of rows a list asks for (``PageRequest``, ``Rows``), the deleted-rows
  switch, search patterns, the admin's scope, the catalog's refusals as ``DomainRefusal``;
- ``admins``: the signed-in admin (``Principal``) and who may open a store's terminal;
- ``merchants``, ``stores``, ``programs``: lists, records, and their writes through the
  catalog service (``domain.catalog``), the one ``loyalty provision`` uses;
- ``customers``, ``cards``: lists, records, contact details, ledgers and wallet sync state;
- ``deletion``: soft delete and restore of every kind, with the reasons a restore is refused;
- ``terminal``, ``enrolment``, ``card_page``: what the staff terminal, the self-enrolment page
  and the customer's card page read;
- ``pipeline``: consumer lag, outbox, dead letters (and their re-drive), held returns.

Lists return plain frozen rows, never ORM objects, so nothing lazy leaks into the pages.
"""
