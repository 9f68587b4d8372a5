#!/usr/bin/env python3
"""Read MTA descriptors and SAP's Kwalify schemas for tests/tests/deployment.rs.

The Rust tests have no YAML parser, so they call this script:

  to-json FILE
      Prints the YAML document FILE (mta.yaml, an .mtaext, manifest.yml)
      as JSON on standard output.

  kwalify-schema SCHEMA OUTPUT
      Writes a copy of a Kwalify schema in which every rule names its type.
      Kwalify gives a rule without `type` the type `str`, and SAP's MTA
      schemas rely on that (`ID: {required: true, pattern: ...}`).
      pykwalify 1.8.0 raises KeyError or TypeError while it reads such a
      rule when the rule also has `pattern` or `default`, so the tests
      validate against this copy, which means the same.

It needs ruamel.yaml, which pykwalify depends on; scripts/setup.sh installs
both into $HOME/.cache/btp-gateway/tools/pykwalify.
"""

import json
import sys

from ruamel.yaml import YAML


def load(path):
    with open(path, encoding="utf-8") as file:
        return YAML(typ="safe").load(file)


def with_explicit_types(rule):
    """Return the Kwalify rule with `type: str` added where it is implicit."""
    if rule is None:
        rule = {}
    rule.setdefault("type", "str")
    if "mapping" in rule:
        rule["mapping"] = {
            key: with_explicit_types(value) for key, value in rule["mapping"].items()
        }
    if "sequence" in rule:
        rule["sequence"] = [with_explicit_types(value) for value in rule["sequence"]]
    return rule


def main(arguments):
    if len(arguments) == 2 and arguments[0] == "to-json":
        json.dump(load(arguments[1]), sys.stdout)
        return 0
    if len(arguments) == 3 and arguments[0] == "kwalify-schema":
        schema = with_explicit_types(load(arguments[1]))
        with open(arguments[2], "w", encoding="utf-8") as file:
            YAML(typ="safe").dump(schema, file)
        return 0
    print(
        "usage: mta_descriptor.py to-json FILE | kwalify-schema SCHEMA OUTPUT",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
