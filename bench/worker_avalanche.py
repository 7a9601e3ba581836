"""The best-known CL library (avalanche-lib) on the standard workload, with its own API.

Runs in bench/.venv-avalanche (see avalanche_env.py), never imports clnb. Two ways to get the data:
--data docs:    the way its documentation shows: torchvision's FashionMNIST with a ToTensor (+ Normalize, as its
                own SplitFMNIST does) transform, split into 5 experiences by `nc_benchmark`;
--data tensors: the same images decoded once into normalised tensors, given to `nc_benchmark` as
                TensorDatasets (no per-sample PIL conversion).
Same model (MLP 784-256-256-10, same initial weights as clnb's under seed 0), SGD, minibatches, epochs, and
an evaluator computing the same metrics as clnb's default (accuracy and loss, epoch/experience/stream),
with no logger printing.
"""
import json, tempfile, time, warnings
import torch
import inspect
import common as C

STRATEGY_CLASSES = {  # clnb registry name -> avalanche.training class, parameter renames
    "naive": ("Naive", {}), "replay": ("Replay", {}), "gdumb": ("GDumb", {}), "der": ("DER", {}),
    "ewc": ("EWC", {}), "si": ("SynapticIntelligence", {}), "lwf": ("LwF", {}), "gem": ("GEM", {}),
    "agem": ("AGEM", {}), "cwr_star": ("CWRStar", {}), "joint": ("JointTraining", {}), "cope": ("CoPE", {}),
    "expert_gate": ("ExpertGateStrategy", {}),
}
for _k in ("gem", "agem"): STRATEGY_CLASSES[_k][1]["patterns_per_experience"] = "patterns_per_exp"
DROPPED = {"cwr_star": {"freeze_remaining_model"}}  # clnb plugin arguments its strategy class does not take

def benchmark(a):
    from avalanche.benchmarks import nc_benchmark
    order, n_exp = C.PROTOCOL["class_order"], C.PROTOCOL["n_experiences"]
    if a.data == "docs":  # torchvision datasets with a ToTensor transform, as in its "benchmarks" how-to
        from torchvision import transforms
        from torchvision.datasets import FashionMNIST
        root = C.torchvision_root(a.root or tempfile.mkdtemp(prefix="fmnist-"))
        tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((C.FMNIST_MEAN,), (C.FMNIST_STD,))])
        train, test = FashionMNIST(root, train=True, transform=tf), FashionMNIST(root, train=False, transform=tf)
        train, test = C.subset(train, a.train_size), C.subset(test, a.test_size)
        return nc_benchmark(train, test, n_exp, task_labels=False, shuffle=False, fixed_class_order=order)
    from torch.utils.data import TensorDataset
    from worker_plain import load_tensors
    xtr, ytr, xte, yte = load_tensors(a.root)
    xtr, ytr = C.subsample(xtr, ytr, a.train_size); xte, yte = C.subsample(xte, yte, a.test_size)
    return nc_benchmark(TensorDataset(xtr, ytr), TensorDataset(xte, yte), n_exp, task_labels=False,
                        shuffle=False, fixed_class_order=order)

def main(a):
    warnings.filterwarnings("ignore")
    C.setup(seed=a.seed)
    import avalanche.training as T
    from avalanche.training.plugins import EvaluationPlugin
    from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
    t0 = time.perf_counter()
    bm = benchmark(a)
    setup_s = time.perf_counter() - t0
    torch.manual_seed(a.seed)
    tr, own = C.split_params(json.loads(a.params))
    model = C.mlp(C.output_size(a.strategy, own))
    name, renames = STRATEGY_CLASSES[a.strategy]
    params = {renames.get(k, k): v for k, v in own.items() if k not in DROPPED.get(a.strategy, ())}
    if a.strategy == "cwr_star": params["cwr_layer_name"] = "7"  # the last Linear of C.mlp() (clnb's MLP calls it 'classifier')
    evaluator = EvaluationPlugin(accuracy_metrics(epoch=True, experience=True, stream=True),
                                 loss_metrics(epoch=True, experience=True, stream=True), loggers=[])
    cls = getattr(T, name)
    accepted = inspect.signature(cls.__init__).parameters
    params = {k: v for k, v in params.items() if k in accepted}   # clnb-only options (e.g. EWC's importance_samples) have no counterpart
    s = cls(model=model, optimizer=C.sgd(model, tr["lr"], tr["momentum"]), criterion=torch.nn.CrossEntropyLoss(),
                         train_mb_size=tr["train_mb_size"], train_epochs=tr["train_epochs"],
                         eval_mb_size=C.PROTOCOL["eval_mb_size"], device="cpu", evaluator=evaluator, **params)
    if a.strategy == "cope":
        # Its CoPE plugin stops each experience after `max_it_cnt` minibatches (1, not a strategy argument): it
        # expects every experience to be one minibatch (data-incremental). On this stream of 5 large experiences
        # that trains on 5 minibatches in all. Uncapped, it does clnb's work: every minibatch of the experience,
        # each with a same-sized minibatch drawn from its class-balanced memory.
        next(p for p in s.plugins if type(p).__name__ == "CoPEPlugin").max_it_cnt = 10**9
    r, times = C.train_and_eval(s, bm, whole_stream=a.strategy == "joint", epochs=tr["train_epochs"])
    import avalanche
    C.report(library=f"avalanche {avalanche.__version__}", strategy=a.strategy, data=a.data,
             final_acc=r["Top1_Acc_Stream/eval_phase/test_stream/Task000"], setup_s=setup_s, **times)

if __name__ == "__main__":
    main(C.arg_parser(__doc__).parse_args())
