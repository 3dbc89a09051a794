"""The SLIM student: a small LM LoRA-distilled to write the teacher's rationales."""

from slimrec.methods.slim.student.config import StudentConfig
from slimrec.methods.slim.student.distill import distill
from slimrec.methods.slim.student.quality import quality_report, rouge_l_f1

__all__ = ["StudentConfig", "distill", "quality_report", "rouge_l_f1"]
