"Two runs with the same seed give identical weights and metrics (CPU, bit for bit); another seed gives others."
import pytest, torch
import cl_builders as B

def outcome(name, seed, bm):
    return B.outcome(B.run(B.build(name, seed), bm, bm.train_stream[:3]))

@pytest.mark.parametrize("name", list(B.BUILDERS))
def test_same_seed_same_run_other_seed_other_run(name):
    assert B.available(name), f"{name}: {B.BUILDERS[name][0]} no longer in clnb"
    bm = B.benchmark(name)
    a, b, c = outcome(name, 0, bm), outcome(name, 0, bm), outcome(name, 1, bm)
    for k in a["weights"]: assert torch.equal(a["weights"][k], b["weights"][k]), k
    assert a["metrics"] == b["metrics"]
    assert not all(torch.equal(a["weights"][k], c["weights"][k]) for k in a["weights"])
    loss = [k for k in a["metrics"] if k.startswith("Loss_Stream")]
    assert loss and all(a["metrics"][k] != c["metrics"][k] for k in loss)

def test_eval_draws_no_random_numbers():
    "Evaluating between experiences must not move the generators, or evaluating more often would change training."
    bm = B.benchmark(); s = B.build("Naive"); s.train(bm.train_stream[0])
    state = torch.get_rng_state(); s.eval(bm.test_stream)
    assert torch.equal(state, torch.get_rng_state())

def test_set_seed_resets_every_generator():
    import random, numpy as np
    from clnb.engine import set_seed
    set_seed(5); a = (random.random(), np.random.rand(), torch.rand(3))
    set_seed(5); b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])
