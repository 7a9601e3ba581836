"""The floor: a plain PyTorch loop over in-memory tensors, same protocol, no CL library.

Training: index slices of the experience's tensors (a fresh permutation per epoch), zero_grad/forward/loss/
backward/step. Evaluation: forward over the test tensors in minibatches of 1024, argmax accuracy.
"""
import argparse, time
import torch
from torch import nn
import common as C

def load_tensors(root=None):
    "Fashion-MNIST as normalised float tensors, read with torchvision (from `root` or a temporary folder)."
    import tempfile, torchvision
    root = C.torchvision_root(root or tempfile.mkdtemp(prefix="fmnist-"))
    out = []
    for train in (True, False):
        ds = torchvision.datasets.FashionMNIST(root, train=train, download=False)
        out += [((ds.data.float() / 255 - C.FMNIST_MEAN) / C.FMNIST_STD).unsqueeze(1), ds.targets.long()]
    return out

def main(a):
    C.setup(seed=a.seed)
    t0 = time.perf_counter()
    xtr, ytr, xte, yte = load_tensors(a.root)
    xtr, ytr = C.subsample(xtr, ytr, a.train_size); xte, yte = C.subsample(xte, yte, a.test_size)
    split = lambda x, y: [(x[(y == 2 * i) | (y == 2 * i + 1)], y[(y == 2 * i) | (y == 2 * i + 1)]) for i in range(5)]
    train, test = split(xtr, ytr), split(xte, yte)
    setup_s = time.perf_counter() - t0
    torch.manual_seed(a.seed)
    model = C.mlp(); opt = C.sgd(model); loss_fn = nn.CrossEntropyLoss()
    bs, ebs = C.PROTOCOL["train_mb_size"], C.PROTOCOL["eval_mb_size"]
    ttrain, teval, n_train, n_eval = C.Timer(), C.Timer(), 0, 0
    for x, y in train:
        with ttrain:
            model.train()
            for _ in range(C.PROTOCOL["train_epochs"]):
                perm = torch.randperm(len(x))
                for i in range(0, len(x), bs):
                    idx = perm[i:i + bs]
                    opt.zero_grad(set_to_none=True)
                    loss_fn(model(x[idx]), y[idx]).backward(); opt.step()
        n_train += len(x) * C.PROTOCOL["train_epochs"]
        with teval, torch.no_grad():
            model.eval(); correct = []
            for xe, ye in test:
                c = torch.zeros((), dtype=torch.long)
                for i in range(0, len(xe), ebs): c += (model(xe[i:i + ebs]).argmax(1) == ye[i:i + ebs]).sum()
                correct.append(c); n_eval += len(xe)
            acc = (torch.stack(correct).sum() / sum(len(xe) for xe, _ in test)).item()
    C.report(library="plain", strategy="naive", data="tensors", final_acc=acc, setup_s=setup_s,
             **C.rates(ttrain, teval, n_train, n_eval))

if __name__ == "__main__":
    main(C.arg_parser(__doc__).parse_args())
