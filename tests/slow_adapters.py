"""Adapters for the kill-a-worker test: the voice call hangs, so the worker
can be killed while the attempt is in flight."""

import asyncio

from activities.adapters import Adapters, SimulatedVoiceRobot, simulated_adapters


class HangingVoiceRobot(SimulatedVoiceRobot):
    async def call(self, **kwargs):
        await asyncio.sleep(3600)
        return await super().call(**kwargs)


def adapters() -> Adapters:
    a = simulated_adapters()
    a.voice = HangingVoiceRobot()
    return a


def ringing_adapters() -> Adapters:
    """The voice call is placed (the simulated ledger has it, the phone rings)
    and then lasts an hour: the worker can be killed mid-call, after the dial."""
    a = simulated_adapters()
    a.voice = SimulatedVoiceRobot(call_seconds=3600)
    return a
