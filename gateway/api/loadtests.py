"""(placeholder: filled in by the load tester work)"""

from fastapi import APIRouter

router = APIRouter()
