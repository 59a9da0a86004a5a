pub mod bootcfg;
