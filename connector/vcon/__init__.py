"""vCon (draft-ietf-vcon-vcon-core) in and out.

`parse` turns an unsigned vCon document into a `CallReport` (the one place that decides which vCon
is accepted), `sign` opens signed (JWS) vCons and checks them against ``server.vcon_keys``, and
`write` turns a `CallReport` into a vCon document (the ``vcon`` target, ``send-example``).
"""
