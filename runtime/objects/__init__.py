"""The object model: IDs, DurableObject, namespaces and stubs, events, the gates."""
