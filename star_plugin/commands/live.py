"""``star live``: live input -> effect chain -> output, through the audio devices."""
from __future__ import annotations

from . import args as a
from .morphing import chain_from_args


def add_arguments(p) -> None:
    a.add_chain(p)
    p.add_argument("--input-device", help="input device name (see --list-devices; default: "
                   "the system's)")
    p.add_argument("--output-device", help="output device name (default: the system's)")
    p.add_argument("--sample-rate", type=a.rate, default=48000, help="device rate in Hz")
    p.add_argument("--channels", type=a.int_in(1, 64), default=1,
                   help="input and output channels")
    p.add_argument("--seconds", type=a.positive_float, default=None,
                   help="stop after this long (default: until Ctrl+C)")
    p.add_argument("--list-devices", action="store_true", help="list audio devices and exit")


def run(args):
    from ..live import audio_devices, pick_devices, run_live

    if args.list_devices:
        inputs, outputs = audio_devices()
        print("inputs: " + (", ".join(inputs) or "(none)"))
        print("outputs: " + (", ".join(outputs) or "(none)"))
        return
    pick_devices(args.input_device, args.output_device)  # fail before loading any model
    chain = chain_from_args(args)
    facts = run_live(chain, args.input_device, args.output_device, args.sample_rate,
                     args.buffer_size, args.channels, args.seconds)
    print(f"live: {facts['input']} -> {facts['output']}, {facts['blocks']} blocks in "
          f"{facts['seconds']:.1f} s, {facts['dropped_input']} input frames dropped")
