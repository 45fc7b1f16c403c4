export * from './register-bank.js';
