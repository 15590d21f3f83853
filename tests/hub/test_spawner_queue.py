"""ClassroomSpawner in the start queue: waiting spawns, the spawn page's messages, timeouts."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import SimpleNamespace

from jupyterhub.objects import Hub
from traitlets.config import Config

from hub.spawner import ClassroomSpawner
from hub.startqueue import LabStarts


def spawner_for(name: str, tmp_path: Path, config: Config | None = None,
                **traits: object) -> ClassroomSpawner:
    user = SimpleNamespace(name=name, url=f"/user/{name}/", escaped_name=name, id=1, groups=[])
    return ClassroomSpawner(user=user, hub=Hub(), config=config or Config(), isolated=False,
                            home_dir_template=str(tmp_path / "home" / "{username}"), **traits)


def test_spawns_past_the_limit_wait_and_the_page_tells_their_place(tmp_path: Path) -> None:
    config = Config()
    config.LabStarts.parallel = 1
    config.LabStarts.start_seconds = 20.0

    async def scenario() -> list[dict]:
        first, second, third = (spawner_for(n, tmp_path, config) for n in ("a", "b", "c"))
        await first.run_pre_spawn_hook()  # a free place: no wait
        waiting = [asyncio.create_task(s.run_pre_spawn_hook()) for s in (second, third)]
        await asyncio.sleep(0)  # the tasks take their places
        events = []
        progress = third.progress()
        events.append(await anext(progress))
        first._leave_queue(ok=True)  # a's lab answered: b starts, c moves up
        events.append(await anext(progress))
        await waiting[0]
        assert not waiting[1].done()
        second._leave_queue(ok=True)
        await waiting[1]
        events.append(await anext(progress))
        await progress.aclose()
        third._leave_queue(ok=True)
        queue = LabStarts.instance(config=config).queue
        assert list(queue.granted) == ["a", "b", "c"]
        return events

    events = asyncio.run(scenario())
    assert events[0]["queue"]["place"] == 2 and "number 2 in line" in events[0]["message"]
    assert events[0]["queue"]["ready_in_s"] >= 40  # two starts of about 20 s before it is ready
    assert events[1]["queue"]["place"] == 1
    assert events[2]["message"].startswith("Starting your lab")


def test_a_stopped_spawn_gives_its_place_back(tmp_path: Path) -> None:
    config = Config()
    config.LabStarts.parallel = 1

    async def scenario() -> None:
        first, second = spawner_for("a", tmp_path, config), spawner_for("b", tmp_path, config)
        await first.run_pre_spawn_hook()
        task = asyncio.create_task(second.run_pre_spawn_hook())
        await asyncio.sleep(0)
        await first.stop()  # a's spawn failed or was cancelled: the hub stops it
        await asyncio.wait_for(task, 5)
        assert LabStarts.instance(config=config).queue.starting[0].name == "b"

    asyncio.run(scenario())


def test_timeouts_come_from_the_measured_start_cost(tmp_path: Path) -> None:
    cores = os.cpu_count() or 1
    cheap = spawner_for("a", tmp_path, lab_start_cpu_seconds=1.5)
    assert (cheap.start_timeout, cheap.http_timeout) == (120, 60)
    costly = spawner_for("b", tmp_path, lab_start_cpu_seconds=30.0)
    assert (costly.start_timeout, costly.http_timeout) == (300, 150)
    LabStarts.clear_instance()
    config = Config()
    config.LabStarts.parallel = 4 * cores  # four starts share each core: each takes 4 x longer
    crowded = spawner_for("c", tmp_path, config, lab_start_cpu_seconds=30.0)
    assert crowded.start_timeout == 1200
