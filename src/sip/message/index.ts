export * from './errors.js';
export * from './header-names.js';
export * from './message.js';
export * from './name-addr.js';
export * from './params.js';
export * from './parser.js';
export * from './uri.js';
export * from './via.js';
