"""HTTPS for the node's APIs: a small bounded server with streaming bodies and a router
(`server`; connections, caps and deadlines in `connections`, strict request heads in
`head`), the client that talks to it (`client`), and HTTP Basic credentials (`auth`).

A protocol package: it knows nothing of jobs, meshes or sites. Errors cross it with their
type (`appliance.errors.to_wire` / `from_wire`).
"""
