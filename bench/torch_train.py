"""PyTorch twin of bench/train.ts: the same LLaMA (written from HF LlamaForCausalLM: RMSNorm, RoPE
(rotate_half), GQA, SwiGLU, optionally tied head), same batch, same step (forward + backward +
clip-grad-norm 1.0 + AdamW, micro-batch accumulation), fp32, eager. Prints one JSON line per model.

  /usr/bin/python3 bench/torch_train.py --spec '{"dim":64,...}' --batch 8 --micro 8 --steps 3 --threads 2
Also: --matmul N[,N...] times C = A @ B (and A @ B.T) for square fp32 matrices (GFLOP/s).
--device cuda runs on the GPU (synchronised before each clock read); --dtype bf16 trains under
torch.autocast(bfloat16) with fp32 master weights and AdamW state (the half-precision yardstick),
and times the matmul in bf16.
"""
import argparse, json, math, time
import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Layer(nn.Module):
    def __init__(self, s):
        super().__init__()
        d, hd = s["dim"], s["dim"] // s["nHeads"]
        self.nh, self.nkv, self.hd = s["nHeads"], s["nKvHeads"], hd
        self.input_layernorm = RMSNorm(d, s["normEps"])
        self.post_attention_layernorm = RMSNorm(d, s["normEps"])
        self.q_proj = nn.Linear(d, self.nh * hd, bias=False)
        self.k_proj = nn.Linear(d, self.nkv * hd, bias=False)
        self.v_proj = nn.Linear(d, self.nkv * hd, bias=False)
        self.o_proj = nn.Linear(self.nh * hd, d, bias=False)
        self.gate_proj = nn.Linear(d, s["ffnDim"], bias=False)
        self.up_proj = nn.Linear(d, s["ffnDim"], bias=False)
        self.down_proj = nn.Linear(s["ffnDim"], d, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.input_layernorm(x)
        q = self.q_proj(h).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(h).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        o = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.o_proj(o)
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, s):
        super().__init__()
        self.s = s
        self.embed_tokens = nn.Embedding(s["vocabSize"], s["dim"])
        self.layers = nn.ModuleList([Layer(s) for _ in range(s["nLayers"])])
        self.norm = RMSNorm(s["dim"], s["normEps"])
        self.lm_head = nn.Linear(s["dim"], s["vocabSize"], bias=False)
        if s["tiedEmbeddings"]:
            self.lm_head.weight = self.embed_tokens.weight
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)
        hd = s["dim"] // s["nHeads"]
        inv = 1.0 / (s["ropeTheta"] ** (torch.arange(0, hd, 2).float() / hd))
        f = torch.outer(torch.arange(s["seqLen"]).float(), inv)
        emb = torch.cat((f, f), dim=-1)
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)
        T = s["seqLen"]
        self.register_buffer("mask", torch.full((T, T), float("-inf")).triu(1), persistent=False)

    def forward(self, ids):
        T = ids.shape[1]
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, self.cos[:T], self.sin[:T], self.mask[:T, :T])
        return self.lm_head(self.norm(x))


DEVICE = "cpu"
DTYPE = "fp32"


def sync():
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def autocast():
    if DTYPE == "bf16":
        return torch.autocast(device_type=DEVICE.split(":")[0], dtype=torch.bfloat16)
    import contextlib
    return contextlib.nullcontext()


def train(spec, batch, micro, steps):
    torch.manual_seed(1)
    model = Llama(spec).to(DEVICE)
    decay = [p for n, p in model.named_parameters() if p.dim() == 2]
    gains = [p for n, p in model.named_parameters() if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": gains, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    T, V = spec["seqLen"], spec["vocabSize"]
    ids = (torch.arange(batch * T, dtype=torch.int64) * 7919 % V).view(batch, T).to(DEVICE)

    def step():
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for s in range(0, batch, micro):
            x = ids[s:s + micro]
            with autocast():
                logits = model(x)
                loss = F.cross_entropy(logits[:, :-1].reshape(-1, V).float(), x[:, 1:].reshape(-1))
            w = x.shape[0] / batch
            (loss * w).backward()
            total += loss.item() * w
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return total

    t0 = time.perf_counter()
    step()
    sync()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync()
    sec = time.perf_counter() - t0
    return {"tokens_per_s": steps * batch * T / sec, "ms_per_step": sec / steps * 1000, "first_step_ms": warm * 1000,
            "loss": loss, "params": sum(p.numel() for p in model.parameters()), "device": DEVICE, "dtype": DTYPE}


def blas():
    if DEVICE.startswith("cuda"):
        return f"torch {torch.__version__}, {torch.cuda.get_device_name()}, {DTYPE}"
    cfg = torch.__config__.show()
    import re
    m = re.search(r"BLAS_INFO=([^,]+)", cfg)
    line = f"built with BLAS_INFO={m.group(1) if m else 'unknown'}"
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for l in f:
                if "blas" in l.lower() or "lapack" in l.lower():
                    libs.add(l.split()[-1])
    except OSError:
        pass
    return f"torch {torch.__version__}, {line}, loaded: {', '.join(sorted(libs)) or 'none found'}"


def matmul(n, trans_b, min_seconds):
    g = torch.Generator().manual_seed(0)
    dt = torch.bfloat16 if DTYPE == "bf16" else torch.float32
    a = (torch.rand(n, n, generator=g) - 0.5).to(DEVICE, dt)
    b = (torch.rand(n, n, generator=g) - 0.5).to(DEVICE, dt)
    f = (lambda: a @ b.T) if trans_b else (lambda: a @ b)
    f()
    sync()
    iters, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_seconds or iters < 1:
        f()
        iters += 1
        sync()
    sec = (time.perf_counter() - t0) / iters
    return {"n": n, "transB": trans_b, "gflops": 2 * n ** 3 / sec / 1e9, "ms": sec * 1000, "runs": iters}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--micro", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--matmul", default="")
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    a = ap.parse_args()
    DEVICE, DTYPE = a.device, a.dtype
    if DEVICE.startswith("cuda") and DTYPE == "fp32":
        # eager fp32 as the issue measures it: no TF32 tensor-core shortcut
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(a.threads)
    print(json.dumps({"blas": blas(), "threads": torch.get_num_threads()}), flush=True)
    if a.spec:
        print(json.dumps(train(json.loads(a.spec), a.batch, a.micro, a.steps)), flush=True)
    for n in [int(x) for x in a.matmul.split(",") if x]:
        for tb in (False, True):
            print(json.dumps(matmul(n, tb, a.min_seconds)), flush=True)
