"""The API server: typed cluster objects over gRPC, the only client of the store.

Modules, one topic each:

* :mod:`.objects` -- kinds, keys, the wire envelope (``google.protobuf.Any``) and object
  helpers shared by the others.
* :mod:`.storage` -- objects in the store: key layout, encoding, compare-and-swap writes.
* :mod:`.selectors` -- label and field selectors.
* :mod:`.watch_cache` -- one store watch per resource, fanned out to every client watch.
* :mod:`.namespaces` -- the namespaces that always exist, and the rules they impose.
* :mod:`.admission` -- defaults and validation (from :mod:`.defaults`, :mod:`.validation`).
* :mod:`.lifecycle` -- create/update/status/delete rules: server-owned fields, generation,
  finalizers, graceful deletion.
* :mod:`.merge_patch` -- JSON merge patch (RFC 7386).
* :mod:`.service` -- the gRPC service, generic over kinds.
* :mod:`.server` -- :func:`run_apiserver`.
"""
