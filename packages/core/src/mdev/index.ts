export * from './parent.js';
