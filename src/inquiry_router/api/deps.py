"""Dependencies as Annotated aliases, so handlers stay one-liners."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from ..config import Settings
from ..pipeline import Pipeline
from ..routing import DeskMap
from ..runtime import PipelineHolder
from ..store import InquiryStore
from ..store.intake import IntakeWriter


def store_of(request: Request) -> InquiryStore:
    store: InquiryStore = request.app.state.store
    return store


def _intake(request: Request) -> IntakeWriter:
    intake: IntakeWriter = request.app.state.intake
    return intake


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def desk_map_of(request: Request) -> DeskMap:
    desk_map: DeskMap = request.app.state.desk_map
    return desk_map


def _holder(request: Request) -> PipelineHolder:
    holder: PipelineHolder = request.app.state.holder
    return holder


def _pipeline(request: Request) -> Pipeline:
    holder: PipelineHolder = request.app.state.holder
    if not holder.ready:
        raise HTTPException(
            status_code=503,
            detail=holder.error or "the model is still loading; retry in a few seconds",
            headers={"Retry-After": "5"},
        )
    return holder.current()


StoreDep = Annotated[InquiryStore, Depends(store_of)]
IntakeDep = Annotated[IntakeWriter, Depends(_intake)]
SettingsDep = Annotated[Settings, Depends(settings_of)]
DeskMapDep = Annotated[DeskMap, Depends(desk_map_of)]
HolderDep = Annotated[PipelineHolder, Depends(_holder)]
PipelineDep = Annotated[Pipeline, Depends(_pipeline)]
