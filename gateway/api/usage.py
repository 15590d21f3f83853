"""(placeholder: filled in by the work that owns it)"""

from fastapi import APIRouter

router = APIRouter()
