"""slimrec: sequential recommendation with rationales distilled from LLMs into small LMs.

Implements SLIM ("Can Small Language Models be Good Reasoners for Sequential
Recommendation?", Wang et al., WWW 2024) and hosts sibling methods as modules.
"""

__version__ = "0.1.0"
