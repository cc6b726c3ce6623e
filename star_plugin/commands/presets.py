"""``star presets list``: the bundled morph presets."""
from __future__ import annotations


def add_arguments(p) -> None:
    pass


def run(args):
    from ..morph_presets import list_presets

    for preset in list_presets():
        p = preset.params
        print(f"{preset.name:<18} structure_amount {p.structure_amount:.1f}  texture_amount "
              f"{p.texture_amount:.1f}  temp {p.temperature:.1f}  {p.mode:<5}  mix "
              f"{p.mix:.1f}  {p.output_gain_db:+.1f} dB  {preset.description}")
