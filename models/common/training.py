"""What both training recipes share: the run folder and its per-epoch log, and checkpoints an interrupted run
resumes from (written to a temporary file, then renamed, so a kill never leaves half a checkpoint)."""
import multiprocessing
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


def worker_pool(workers):
    """Processes that make training batches (None for 0: batches made in this process). Fork it before anything
    touches the GPU or starts a thread pool (ONNX Runtime's would hang the children); each child runs OpenCV on
    one thread."""
    if workers <= 0:
        return None
    import cv2
    return multiprocessing.get_context("fork").Pool(workers, initializer=cv2.setNumThreads, initargs=(1,))


def resume(work, model, opt, say, quiet=False, ema=None, map_location=None):
    """(first epoch, best figure) from the folder's last checkpoint, or (0, -1) for a new run."""
    if not (work / "last.pt").exists():
        return 0, -1.0
    ck = torch.load(work / "last.pt", weights_only=False, map_location=map_location)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["opt"])
    if ema is not None:
        ema.load_state_dict(ck.get("ema", ck["model"]))
    if not quiet:
        say(f"resumed at epoch {ck['epoch'] + 1} (best {ck['best']:.4f})")
    return ck["epoch"] + 1, ck["best"]


def checkpoint(work, model, opt, epoch, best, ema=None):
    state = {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "best": best}
    if ema is not None:
        state["ema"] = ema.state_dict()
    torch.save(state, work / "last.pt.tmp")
    pathlib.Path(work / "last.pt.tmp").replace(work / "last.pt")


class Ema:
    """An exponential moving average of a model's weights and batch-norm statistics: on small validation sets
    it is steadier and usually a little better than the last step's weights. Warms up over the first steps."""

    def __init__(self, model, decay):
        import copy
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay, self.steps = decay, 0

    def update(self, model):
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        live = model.state_dict()
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                if v.dtype.is_floating_point:
                    v.mul_(d).add_(live[k].detach(), alpha=1 - d)
                else:
                    v.copy_(live[k])

    def state_dict(self):
        return {"weights": self.model.state_dict(), "steps": self.steps}

    def load_state_dict(self, state):
        if "weights" in state:
            self.model.load_state_dict(state["weights"])
            self.steps = state["steps"]
        else:  # a checkpoint from before the average was kept: start it from the model
            self.model.load_state_dict(state)
