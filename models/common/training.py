"""What both training recipes share: the run folder and its per-epoch log, and checkpoints an interrupted run
resumes from (written to a temporary file, then renamed, so a kill never leaves half a checkpoint)."""
import pathlib

import torch


def run_folder(args):
    """(folder, say): `say` prints a line and appends it to the folder's train.log."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    log = open(work / "train.log", "a")

    def say(msg):
        print(msg, flush=True)
        log.write(msg + "\n")
        log.flush()

    return work, say


def resume(work, model, opt, say, quiet=False):
    """(first epoch, best figure) from the folder's last checkpoint, or (0, -1) for a new run."""
    if not (work / "last.pt").exists():
        return 0, -1.0
    ck = torch.load(work / "last.pt", weights_only=False)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["opt"])
    if not quiet:
        say(f"resumed at epoch {ck['epoch'] + 1} (best {ck['best']:.4f})")
    return ck["epoch"] + 1, ck["best"]


def checkpoint(work, model, opt, epoch, best):
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "best": best},
               work / "last.pt.tmp")
    pathlib.Path(work / "last.pt.tmp").replace(work / "last.pt")
