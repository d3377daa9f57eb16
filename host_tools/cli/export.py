"""`host_tools export`: a model trained on a board back to a PyTorch state_dict and a change report."""

from host_tools.model import mct_format
from host_tools.model.export import compare, dequantized_state, format_report, save_state

EPILOG = """example:
  mpremote cp :trained.mct build/trained.mct        # or: ampy --port /dev/ttyACM0 get trained.mct
  host_tools export build/trained.mct --original build/demo/fashion.mct -o build/trained_state.pt
"""


HELP = "a trained model back to a dequantized PyTorch state_dict"
DESCRIPTION = ("Read a model saved on the board (Model.save) and write its weights as a "
               "dequantized PyTorch state_dict (or .npz), keyed by layer name, with a "
               "report of which tensors changed against --original.")


def add_arguments(p):
    p.add_argument("model", help="the trained .mct file")
    p.add_argument("-o", "--output", required=True, help="state_dict to write (.pt, or .npz)")
    p.add_argument("--original", help="the .mct the board started from: report what training changed")


def command(args):
    trained = mct_format.read(args.model)
    state = dequantized_state(trained)
    save_state(state, args.output)
    print(f"wrote {args.output}: {len(state)} tensors")
    if args.original:
        print(format_report(compare(trained, mct_format.read(args.original))))
    return 0
