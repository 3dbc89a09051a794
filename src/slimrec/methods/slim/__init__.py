"""SLIM (Wang et al., "Can Small Language Models be Good Reasoners for Sequential
Recommendation?", WWW 2024): rationale embeddings fused into a backbone, or matched to
item texts, and every variant the paper and our controls compare -- registered here.

``slim`` and ``slim-`` are the same model; only the rationales differ: the student's for
every user (SLIM) or the teacher's for the few users it answered (SLIM-).
"""

from slimrec.methods.base import register_method
from slimrec.methods.slim.config import DEFAULT_FUSION, TEXT_FIELDS, SlimConfig
from slimrec.methods.slim.method import Slim
from slimrec.methods.slim.tables import text_control, user_text_table, user_texts

register_method(
    "slim",
    SlimConfig,
    Slim,
    description="ID-based SLIM: text-fused items and users s_u = s_seq_u + tanh(10 a) "
    "g_l(s_text_u) (a gate that opens fast, a = 0 at init), the student's rationales",
)
register_method(
    "slim-concat",
    SlimConfig,
    Slim,
    description="ID-based SLIM as published: s_u = g_f([g_l(s_text_u); s_seq_u]) from a "
    "random init (the paper's fusion), the student's rationales",
    fusion="concat",
)
register_method(
    "slim-residual",
    SlimConfig,
    Slim,
    description="ID-based SLIM with a residual fusion s_u = s_seq_u + g_f([g_l(s_text_u); "
    "s_seq_u]) (g_f zero at init), the student's rationales",
    fusion="residual",
)
register_method(
    "slim-gate",
    SlimConfig,
    Slim,
    description="ID-based SLIM with a slow gate s_u = s_seq_u + tanh(a) g_l(s_text_u), "
    "a = 0 at init, the student's rationales",
    fusion="gate",
)
# The controls: SLIM's, then the same three for each other fusion design (a design's gain
# is the text's only where it also beats itself on other text).
register_method(
    "slim-zero-text",
    SlimConfig,
    Slim,
    description="control: SLIM with every rationale embedding set to zero (the fusion "
    "without text)",
    control="zero",
)
register_method(
    "slim-shuffled-text",
    SlimConfig,
    Slim,
    description="control: SLIM with the rationales shuffled across users (text of someone else)",
    control="shuffled",
)
register_method(
    "slim-history-text",
    SlimConfig,
    Slim,
    description="control: SLIM with each rationale replaced by the mean text embedding of "
    "the items it was written from (the titles without the LLM's reasoning)",
    control="history",
)
register_method(
    "slim-random-text",
    SlimConfig,
    Slim,
    description="control: SLIM with each rationale replaced by a random vector drawn with the "
    "rationales' mean and covariance (a fixed code per user that says nothing about them)",
    control="random",
)
register_method(
    "slim-mean-text",
    SlimConfig,
    Slim,
    description="control: SLIM with every rationale replaced by the mean rationale (text, the "
    "same for every user)",
    control="mean",
)
register_method(
    "slim-oracle-text",
    SlimConfig,
    Slim,
    description="positive control, leaks the future: SLIM with each rationale replaced by the "
    "mean text embedding of the items after its cut (the ceiling of what text can give)",
    control="oracle",
)
for _fusion, _what in (
    ("concat", "the paper's concat fusion"),
    ("residual", "the residual fusion"),
    ("gate", "the slow gate"),
):
    register_method(
        f"slim-{_fusion}-shuffled-text",
        SlimConfig,
        Slim,
        description=f"control: {_what} with the rationales shuffled across users",
        fusion=_fusion,
        control="shuffled",
    )
    register_method(
        f"slim-{_fusion}-zero-text",
        SlimConfig,
        Slim,
        description=f"control: {_what} with every rationale embedding set to zero",
        fusion=_fusion,
        control="zero",
    )
    register_method(
        f"slim-{_fusion}-oracle-text",
        SlimConfig,
        Slim,
        description=f"positive control, leaks the future: {_what} with each rationale "
        "replaced by the mean text embedding of the items after its cut (can it follow text "
        "that names the next items?)",
        fusion=_fusion,
        control="oracle",
    )
register_method(
    "slim-",
    SlimConfig,
    Slim,
    description="ID-based SLIM with the teacher's rationales (the 'ChatGPT feature' baseline)",
    rationales="teacher",
)
for _n, _what in ((1, "preference summary"), (2, "recommended categories"), (3, "suggested items")):
    register_method(
        f"slim-step{_n}",
        SlimConfig,
        Slim,
        description=f"SLIM-Step{_n}: ID-based SLIM with only step {_n} of the rationale ({_what})",
        field=f"step{_n}",
    )
register_method(
    "text-matching",
    SlimConfig,
    Slim,
    description="ID-agnostic SLIM: g_t(user rationale) . g_t(item text), no IDs, no sequence model",
    id_agnostic=True,
)
register_method(
    "text-matching-shuffled-text",
    SlimConfig,
    Slim,
    description="control: text matching with the rationales shuffled across users",
    id_agnostic=True,
    control="shuffled",
)
register_method(
    "text-matching-history-text",
    SlimConfig,
    Slim,
    description="control: text matching with each rationale replaced by the mean text "
    "embedding of the items it was written from",
    id_agnostic=True,
    control="history",
)

__all__ = [
    "DEFAULT_FUSION",
    "TEXT_FIELDS",
    "Slim",
    "SlimConfig",
    "text_control",
    "user_text_table",
    "user_texts",
]
