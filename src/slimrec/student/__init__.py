"""The SLIM student: a small LM LoRA-distilled to write the teacher's rationales."""

from slimrec.student.config import StudentConfig
from slimrec.student.distill import distill
from slimrec.student.quality import quality_report, rouge_l_f1

__all__ = ["StudentConfig", "distill", "quality_report", "rouge_l_f1"]
