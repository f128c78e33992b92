// Pictures of training: metric curves and first-layer filters.
export {
  metricsSvg,
  niceTicks,
  parseMetricsLog,
  plotMetrics,
  plotMetricsFile,
  readMetricsLog,
  MAX_METRICS_LOG_BYTES,
  type MetricsRecord,
  type PlotOptions,
  type TrainMetricsRecord,
  type ValMetricsRecord,
} from './plot.js';
export { filtersImage, renderFilters, type FilterImage, type FilterWeight, type RenderFiltersOptions } from './filters.js';
