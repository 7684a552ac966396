"""What the kinds' model-config dataclasses share: reading one back from a bundle's manifest."""

from __future__ import annotations

import dataclasses

from rnntool.errors import ConfigError, CorruptBundle


def config_from_dict(cls, d: dict, what: str):
    """``cls(**d)`` for a config a bundle recorded; CorruptBundle (naming ``what``, e.g. "tagger") for keys a
    newer rnntool wrote or values that do not hold."""
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise CorruptBundle(f"{what} config has unknown settings {unknown}; the bundle was written by a newer "
                            "rnntool — upgrade rnntool")
    try:
        return cls(**d)
    except (TypeError, ConfigError) as e:
        raise CorruptBundle(f"{what} config is not valid ({e}); re-train the model") from None
