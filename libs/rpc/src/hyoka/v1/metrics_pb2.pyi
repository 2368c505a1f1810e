from hyoka.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScoreItem(_message.Message):
    __slots__ = ("prediction", "references", "pass_counts")
    PREDICTION_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    PASS_COUNTS_FIELD_NUMBER: _ClassVar[int]
    prediction: str
    references: _containers.RepeatedScalarFieldContainer[str]
    pass_counts: PassCounts
    def __init__(self, prediction: _Optional[str] = ..., references: _Optional[_Iterable[str]] = ..., pass_counts: _Optional[_Union[PassCounts, _Mapping]] = ...) -> None: ...

class PassCounts(_message.Message):
    __slots__ = ("total", "correct")
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    CORRECT_FIELD_NUMBER: _ClassVar[int]
    total: int
    correct: int
    def __init__(self, total: _Optional[int] = ..., correct: _Optional[int] = ...) -> None: ...

class ScoreColumns(_message.Message):
    __slots__ = ("predictions", "references", "reference_counts")
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    REFERENCES_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_COUNTS_FIELD_NUMBER: _ClassVar[int]
    predictions: _containers.RepeatedScalarFieldContainer[str]
    references: _containers.RepeatedScalarFieldContainer[str]
    reference_counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, predictions: _Optional[_Iterable[str]] = ..., references: _Optional[_Iterable[str]] = ..., reference_counts: _Optional[_Iterable[int]] = ...) -> None: ...

class ScoreRequest(_message.Message):
    __slots__ = ("metric", "options", "items", "columns")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METRIC_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    metric: str
    options: _containers.ScalarMap[str, str]
    items: _containers.RepeatedCompositeFieldContainer[ScoreItem]
    columns: ScoreColumns
    def __init__(self, metric: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ..., items: _Optional[_Iterable[_Union[ScoreItem, _Mapping]]] = ..., columns: _Optional[_Union[ScoreColumns, _Mapping]] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("corpus_score", "item_scores", "signature", "details")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CORPUS_SCORE_FIELD_NUMBER: _ClassVar[int]
    ITEM_SCORES_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    corpus_score: float
    item_scores: _containers.RepeatedScalarFieldContainer[float]
    signature: _common_pb2.ScoreSignature
    details: _containers.ScalarMap[str, float]
    def __init__(self, corpus_score: _Optional[float] = ..., item_scores: _Optional[_Iterable[float]] = ..., signature: _Optional[_Union[_common_pb2.ScoreSignature, _Mapping]] = ..., details: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ScoreStreamConfig(_message.Message):
    __slots__ = ("metric", "options")
    class OptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    METRIC_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    metric: str
    options: _containers.ScalarMap[str, str]
    def __init__(self, metric: _Optional[str] = ..., options: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ScoreStreamChunk(_message.Message):
    __slots__ = ("items", "columns")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[ScoreItem]
    columns: ScoreColumns
    def __init__(self, items: _Optional[_Iterable[_Union[ScoreItem, _Mapping]]] = ..., columns: _Optional[_Union[ScoreColumns, _Mapping]] = ...) -> None: ...

class ScoreStreamRequest(_message.Message):
    __slots__ = ("config", "chunk")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    config: ScoreStreamConfig
    chunk: ScoreStreamChunk
    def __init__(self, config: _Optional[_Union[ScoreStreamConfig, _Mapping]] = ..., chunk: _Optional[_Union[ScoreStreamChunk, _Mapping]] = ...) -> None: ...

class ScoreStreamResponse(_message.Message):
    __slots__ = ("corpus_score", "item_scores", "signature", "details")
    class DetailsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    CORPUS_SCORE_FIELD_NUMBER: _ClassVar[int]
    ITEM_SCORES_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_FIELD_NUMBER: _ClassVar[int]
    corpus_score: float
    item_scores: _containers.RepeatedScalarFieldContainer[float]
    signature: _common_pb2.ScoreSignature
    details: _containers.ScalarMap[str, float]
    def __init__(self, corpus_score: _Optional[float] = ..., item_scores: _Optional[_Iterable[float]] = ..., signature: _Optional[_Union[_common_pb2.ScoreSignature, _Mapping]] = ..., details: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ListMetricsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MetricOption(_message.Message):
    __slots__ = ("name", "description", "default_value", "allowed_values")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_VALUES_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    default_value: str
    allowed_values: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., default_value: _Optional[str] = ..., allowed_values: _Optional[_Iterable[str]] = ...) -> None: ...

class MetricInfo(_message.Message):
    __slots__ = ("name", "description", "options", "corpus_level")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    CORPUS_LEVEL_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    options: _containers.RepeatedCompositeFieldContainer[MetricOption]
    corpus_level: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., options: _Optional[_Iterable[_Union[MetricOption, _Mapping]]] = ..., corpus_level: _Optional[bool] = ...) -> None: ...

class ListMetricsResponse(_message.Message):
    __slots__ = ("metrics", "components", "max_batch_items", "max_stream_items")
    METRICS_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_ITEMS_FIELD_NUMBER: _ClassVar[int]
    MAX_STREAM_ITEMS_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.RepeatedCompositeFieldContainer[MetricInfo]
    components: _containers.RepeatedCompositeFieldContainer[_common_pb2.ComponentVersion]
    max_batch_items: int
    max_stream_items: int
    def __init__(self, metrics: _Optional[_Iterable[_Union[MetricInfo, _Mapping]]] = ..., components: _Optional[_Iterable[_Union[_common_pb2.ComponentVersion, _Mapping]]] = ..., max_batch_items: _Optional[int] = ..., max_stream_items: _Optional[int] = ...) -> None: ...
