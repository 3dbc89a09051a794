"""Scoring candidate answers after one prompt: the shared-prefix path equals scoring each
candidate as its own full sequence, for a causal LM and for an encoder-decoder."""

from __future__ import annotations

import pytest
import torch
from tests.tiny_lm import make_tiny_lm, make_tiny_t5

from slimrec.llm.candidates import Answer, CandidateLM, Prompt, Soft

TITLES = ["Pilot G2 pens", "Moleskine notebook", "Staplers", "A", "Rhodia <|im_end|> pad"]


@pytest.fixture(scope="module", params=["causal", "seq2seq"])
def lm(request, tmp_path_factory) -> CandidateLM:
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "causal":
        make_tiny_lm(folder, init_std=0.2)
    else:
        make_tiny_t5(folder)
    return CandidateLM.load(folder)


def naive_scores(lm: CandidateLM, prompt: Prompt, answers, soft) -> torch.Tensor:
    """Mean answer-token log-probability, one full forward per candidate."""
    out = []
    for ids in answers:
        embeds = lm.input_embeds(prompt, soft)
        ids_t = torch.tensor(ids)
        if lm.seq2seq:
            decoder = torch.tensor([*lm.decoder_prefix, *ids[:-1]])[None]
            logits = lm.model(inputs_embeds=embeds, decoder_input_ids=decoder).logits[0]
            logits = logits[len(lm.decoder_prefix) - 1 :]
        else:
            full = torch.cat([embeds, lm.embeddings(ids_t[None])], dim=1)
            logits = lm.model(inputs_embeds=full).logits[0, embeds.shape[1] - 1 : -1]
        logp = logits.float().log_softmax(-1).gather(-1, ids_t[:, None])[:, 0]
        out.append(logp.mean())
    return torch.stack(out)


def test_shared_prefix_scores_equal_one_forward_per_candidate(lm):
    torch.manual_seed(0)
    prompt = lm.prompt(["The history is: pens, paper.", Soft(3), " Next might be:", Answer()])
    soft = torch.randn(3, lm.hidden_size)
    answers = [lm.answer_ids(t) for t in TITLES]
    with torch.no_grad():
        fast = lm.scores(prompt, answers, soft)
        slow = naive_scores(lm, prompt, answers, soft)
    assert torch.allclose(fast, slow, atol=1e-5)


def test_permuting_the_candidates_permutes_their_scores(lm):
    prompt = lm.prompt(["Next might be:"])
    answers = [lm.answer_ids(t) for t in TITLES]
    order = [3, 0, 4, 1, 2]
    with torch.no_grad():
        base = lm.scores(prompt, answers)
        moved = lm.scores(prompt, [answers[i] for i in order])
    assert torch.allclose(moved, base[order], atol=1e-5)


def test_soft_vectors_equal_to_token_embeddings_give_the_plain_text_scores(lm):
    text_ids = lm.text_ids(" notebooks and staplers")
    spliced = lm.prompt(["The user bought", Soft(len(text_ids)), ". Next:"])
    plain = lm.prompt(["The user bought", " notebooks and staplers", ". Next:"])
    assert torch.equal(spliced.ids[~spliced.soft].clone(), plain.ids[~spliced.soft])
    soft = lm.embeddings(torch.tensor(text_ids)).detach()
    answers = [lm.answer_ids(t) for t in TITLES]
    with torch.no_grad():
        a = lm.scores(spliced, answers, soft, reduce="sum")
        b = lm.scores(plain, answers, reduce="sum")
    assert torch.allclose(a, b, atol=1e-5)


def test_gradients_reach_the_soft_vectors_and_never_the_frozen_model(lm):
    prompt = lm.prompt(["History:", Soft(2), " Next:"])
    soft = torch.randn(2, lm.hidden_size, requires_grad=True)
    scores = lm.scores(prompt, [lm.answer_ids(t) for t in TITLES], soft)
    torch.nn.functional.cross_entropy(scores[None], torch.tensor([1])).backward()
    assert soft.grad is not None and soft.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in lm.model.parameters())


def test_first_token_scores_tie_for_answers_sharing_their_first_token(lm):
    prompt = lm.prompt(["Next:"])
    a, b = lm.answer_ids("Pilot G2 pens"), lm.answer_ids("Pilot G2 pencils")
    assert a[0] == b[0] and a != b
    with torch.no_grad():
        first = lm.scores(prompt, [a, b], reduce="first")
        mean = lm.scores(prompt, [a, b], reduce="mean")
    assert first[0] == first[1] and mean[0] != mean[1]


def test_hostile_titles_stay_text(lm):
    ids = lm.answer_ids("x <|im_end|> <extra_id_0>")
    specials = set(lm.tokenizer.all_special_ids)
    assert not specials & set(ids)


def test_an_encoder_reads_the_sentinel_at_the_answer_and_a_causal_lm_nothing(lm):
    with_answer = lm.prompt(["Next:", Answer()]).ids.tolist()
    without = lm.prompt(["Next:"]).ids.tolist()
    if lm.seq2seq:
        sentinel = lm.tokenizer.convert_tokens_to_ids("<extra_id_0>")
        assert with_answer == [*without[:-1], sentinel, without[-1]]
        assert lm.decoder_prefix[-1] == sentinel
    else:
        assert with_answer == without
