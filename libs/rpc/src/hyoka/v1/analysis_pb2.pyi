from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BudgetLanguage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUDGET_LANGUAGE_UNSPECIFIED: _ClassVar[BudgetLanguage]
    BUDGET_LANGUAGE_ENGLISH: _ClassVar[BudgetLanguage]
    BUDGET_LANGUAGE_JAPANESE: _ClassVar[BudgetLanguage]
BUDGET_LANGUAGE_UNSPECIFIED: BudgetLanguage
BUDGET_LANGUAGE_ENGLISH: BudgetLanguage
BUDGET_LANGUAGE_JAPANESE: BudgetLanguage

class ModelScores(_message.Message):
    __slots__ = ("model_id", "scores", "group", "display_name")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    scores: _containers.RepeatedScalarFieldContainer[float]
    group: str
    display_name: str
    def __init__(self, model_id: _Optional[str] = ..., scores: _Optional[_Iterable[float]] = ..., group: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class ScoreMatrix(_message.Message):
    __slots__ = ("benchmarks", "models")
    BENCHMARKS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    benchmarks: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedCompositeFieldContainer[ModelScores]
    def __init__(self, benchmarks: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[_Union[ModelScores, _Mapping]]] = ...) -> None: ...

class ModelBudget(_message.Message):
    __slots__ = ("model_id", "params_b", "en_tokens_b", "ja_tokens_b", "source", "confidence", "is_estimate", "notes")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMS_B_FIELD_NUMBER: _ClassVar[int]
    EN_TOKENS_B_FIELD_NUMBER: _ClassVar[int]
    JA_TOKENS_B_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    IS_ESTIMATE_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    params_b: float
    en_tokens_b: float
    ja_tokens_b: float
    source: str
    confidence: str
    is_estimate: bool
    notes: str
    def __init__(self, model_id: _Optional[str] = ..., params_b: _Optional[float] = ..., en_tokens_b: _Optional[float] = ..., ja_tokens_b: _Optional[float] = ..., source: _Optional[str] = ..., confidence: _Optional[str] = ..., is_estimate: _Optional[bool] = ..., notes: _Optional[str] = ...) -> None: ...

class BudgetTable(_message.Message):
    __slots__ = ("rows",)
    ROWS_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[ModelBudget]
    def __init__(self, rows: _Optional[_Iterable[_Union[ModelBudget, _Mapping]]] = ...) -> None: ...

class NewModelScores(_message.Message):
    __slots__ = ("model_id", "scores")
    class ScoresEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    scores: _containers.ScalarMap[str, float]
    def __init__(self, model_id: _Optional[str] = ..., scores: _Optional[_Mapping[str, float]] = ...) -> None: ...

class AnalyzeRequest(_message.Message):
    __slots__ = ("scores", "use_default_scores", "budgets", "use_default_budgets", "components", "new_models")
    SCORES_FIELD_NUMBER: _ClassVar[int]
    USE_DEFAULT_SCORES_FIELD_NUMBER: _ClassVar[int]
    BUDGETS_FIELD_NUMBER: _ClassVar[int]
    USE_DEFAULT_BUDGETS_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    NEW_MODELS_FIELD_NUMBER: _ClassVar[int]
    scores: ScoreMatrix
    use_default_scores: bool
    budgets: BudgetTable
    use_default_budgets: bool
    components: int
    new_models: _containers.RepeatedCompositeFieldContainer[NewModelScores]
    def __init__(self, scores: _Optional[_Union[ScoreMatrix, _Mapping]] = ..., use_default_scores: _Optional[bool] = ..., budgets: _Optional[_Union[BudgetTable, _Mapping]] = ..., use_default_budgets: _Optional[bool] = ..., components: _Optional[int] = ..., new_models: _Optional[_Iterable[_Union[NewModelScores, _Mapping]]] = ...) -> None: ...

class BenchmarkLoadings(_message.Message):
    __slots__ = ("benchmark", "values")
    BENCHMARK_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    benchmark: str
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, benchmark: _Optional[str] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class ModelComponentScores(_message.Message):
    __slots__ = ("model_id", "values", "group")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    values: _containers.RepeatedScalarFieldContainer[float]
    group: str
    def __init__(self, model_id: _Optional[str] = ..., values: _Optional[_Iterable[float]] = ..., group: _Optional[str] = ...) -> None: ...

class ExcludedModel(_message.Message):
    __slots__ = ("model_id", "reason")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    reason: str
    def __init__(self, model_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class BudgetCorrelation(_message.Message):
    __slots__ = ("component", "language", "r", "n", "models", "excluded", "estimated_models", "slope", "intercept")
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    R_FIELD_NUMBER: _ClassVar[int]
    N_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_MODELS_FIELD_NUMBER: _ClassVar[int]
    SLOPE_FIELD_NUMBER: _ClassVar[int]
    INTERCEPT_FIELD_NUMBER: _ClassVar[int]
    component: int
    language: BudgetLanguage
    r: float
    n: int
    models: _containers.RepeatedScalarFieldContainer[str]
    excluded: _containers.RepeatedCompositeFieldContainer[ExcludedModel]
    estimated_models: _containers.RepeatedScalarFieldContainer[str]
    slope: float
    intercept: float
    def __init__(self, component: _Optional[int] = ..., language: _Optional[_Union[BudgetLanguage, str]] = ..., r: _Optional[float] = ..., n: _Optional[int] = ..., models: _Optional[_Iterable[str]] = ..., excluded: _Optional[_Iterable[_Union[ExcludedModel, _Mapping]]] = ..., estimated_models: _Optional[_Iterable[str]] = ..., slope: _Optional[float] = ..., intercept: _Optional[float] = ...) -> None: ...

class Projection(_message.Message):
    __slots__ = ("model_id", "values", "observed_benchmarks", "missing_benchmarks", "method")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_BENCHMARKS_FIELD_NUMBER: _ClassVar[int]
    MISSING_BENCHMARKS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    values: _containers.RepeatedScalarFieldContainer[float]
    observed_benchmarks: _containers.RepeatedScalarFieldContainer[str]
    missing_benchmarks: _containers.RepeatedScalarFieldContainer[str]
    method: str
    def __init__(self, model_id: _Optional[str] = ..., values: _Optional[_Iterable[float]] = ..., observed_benchmarks: _Optional[_Iterable[str]] = ..., missing_benchmarks: _Optional[_Iterable[str]] = ..., method: _Optional[str] = ...) -> None: ...

class AnalyzeResponse(_message.Message):
    __slots__ = ("benchmarks", "models", "explained_variance_ratio", "loadings", "pc_scores", "budget_correlations", "projections", "sign_convention")
    BENCHMARKS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    EXPLAINED_VARIANCE_RATIO_FIELD_NUMBER: _ClassVar[int]
    LOADINGS_FIELD_NUMBER: _ClassVar[int]
    PC_SCORES_FIELD_NUMBER: _ClassVar[int]
    BUDGET_CORRELATIONS_FIELD_NUMBER: _ClassVar[int]
    PROJECTIONS_FIELD_NUMBER: _ClassVar[int]
    SIGN_CONVENTION_FIELD_NUMBER: _ClassVar[int]
    benchmarks: _containers.RepeatedScalarFieldContainer[str]
    models: _containers.RepeatedScalarFieldContainer[str]
    explained_variance_ratio: _containers.RepeatedScalarFieldContainer[float]
    loadings: _containers.RepeatedCompositeFieldContainer[BenchmarkLoadings]
    pc_scores: _containers.RepeatedCompositeFieldContainer[ModelComponentScores]
    budget_correlations: _containers.RepeatedCompositeFieldContainer[BudgetCorrelation]
    projections: _containers.RepeatedCompositeFieldContainer[Projection]
    sign_convention: str
    def __init__(self, benchmarks: _Optional[_Iterable[str]] = ..., models: _Optional[_Iterable[str]] = ..., explained_variance_ratio: _Optional[_Iterable[float]] = ..., loadings: _Optional[_Iterable[_Union[BenchmarkLoadings, _Mapping]]] = ..., pc_scores: _Optional[_Iterable[_Union[ModelComponentScores, _Mapping]]] = ..., budget_correlations: _Optional[_Iterable[_Union[BudgetCorrelation, _Mapping]]] = ..., projections: _Optional[_Iterable[_Union[Projection, _Mapping]]] = ..., sign_convention: _Optional[str] = ...) -> None: ...
