"""clnb on the standard workload: one strategy of the registry, Split Fashion-MNIST, the protocol of common.py.

The strategy is built by name with `clnb.registry.build_strategy` (its default hyperparameters, updated by
--params); data come from `clnb.datasets.split_fmnist` (tensors, minibatches as index slices).
"""
import json, time
import torch
import common as C

def main(a):
    C.setup(seed=a.seed)
    from clnb.datasets import split_fmnist
    from clnb.models import MLP
    from clnb.registry import build_strategy
    t0 = time.perf_counter()
    bm = split_fmnist(n_experiences=C.PROTOCOL["n_experiences"], seed=None, train_size=a.train_size, test_size=a.test_size)
    setup_s = time.perf_counter() - t0
    torch.manual_seed(a.seed)
    tr, params = C.split_params(json.loads(a.params))
    model = MLP(784, C.PROTOCOL["hidden"], C.output_size(a.strategy, params))
    s = build_strategy(a.strategy, model, C.sgd(model, tr["lr"], tr["momentum"]), device=a.device, train_mb_size=tr["train_mb_size"],
                       train_epochs=tr["train_epochs"], eval_mb_size=C.PROTOCOL["eval_mb_size"], **params)
    r, times = C.train_and_eval(s, bm, whole_stream=a.strategy == "joint", epochs=tr["train_epochs"])
    C.report(library="clnb", strategy=a.strategy, data="tensors", final_acc=r["Top1_Acc_Stream/eval_phase/test_stream/Task000"],
             setup_s=setup_s, **times)

if __name__ == "__main__":
    p = C.arg_parser(__doc__)
    p.add_argument("--device", default="cpu", help="where clnb trains (the protocol: cpu; gpu_check.py passes cuda)")
    main(p.parse_args())
