"""The foundation under everything else: errors, atomic files, the ``.npz`` archive format, YAML
reading, making registered environments safely, and the lab's version. It imports nothing from the
rest of the lab, from ``agents`` or from ``generative`` (tests/test_import_contracts.py), so any layer
may build on it; ``lab.nets``, the supervised core, is the other half of the foundation."""
