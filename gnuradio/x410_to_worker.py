#!/usr/bin/env python3
# -*- coding: utf-8 -*-

#
# SPDX-License-Identifier: GPL-3.0
#
# GNU Radio Python Flow Graph
# Title: X410 three-band capture to the backscatter worker
# Author: backscatter testbed
# Description: USRP X410: three phase-aligned RX channels (central 915 MHz, lower 870 MHz, upper 960 MHz) at 30.72 MS/s, one shared clock, a timed start; each channel to a ZMQ PUSH sink with tag headers for `backscatter worker --gnuradio`
# GNU Radio version: 3.10.5.1

from gnuradio import gr
from gnuradio.filter import firdes
from gnuradio.fft import window
import sys
import signal
from argparse import ArgumentParser
from gnuradio.eng_arg import eng_float, intx
from gnuradio import eng_notation
from gnuradio import uhd
import time
from gnuradio import zeromq




class x410_to_worker(gr.top_block):

    def __init__(self, device_args='type=x4xx,master_clock_rate=245.76e6', clock_source='internal', time_source='internal', gain_db=30, port_base=5601):
        gr.top_block.__init__(self, "X410 three-band capture to the backscatter worker", catch_exceptions=True)

        ##################################################
        # Parameters
        ##################################################
        self.device_args = device_args
        self.clock_source = clock_source
        self.time_source = time_source
        self.gain_db = gain_db
        self.port_base = port_base

        ##################################################
        # Variables
        ##################################################
        self.start_delay_s = start_delay_s = 1.5
        self.samp_rate = samp_rate = 30.72e6

        ##################################################
        # Blocks
        ##################################################

        self.zeromq_push_sink_upper = zeromq.push_sink(gr.sizeof_gr_complex, 1, "tcp://127.0.0.1:%d" % (port_base + 2), 100, True, (-1))
        self.zeromq_push_sink_lower = zeromq.push_sink(gr.sizeof_gr_complex, 1, "tcp://127.0.0.1:%d" % (port_base + 1), 100, True, (-1))
        self.zeromq_push_sink_central = zeromq.push_sink(gr.sizeof_gr_complex, 1, "tcp://127.0.0.1:%d" % port_base, 100, True, (-1))
        self.uhd_usrp_source_0 = uhd.usrp_source(
            ",".join(("", device_args)),
            uhd.stream_args(
                cpu_format="fc32",
                otw_format="sc16",
                args='',
                channels=list(range(0,3)),
            ),
        )
        self.uhd_usrp_source_0.set_clock_source(clock_source, 0)
        self.uhd_usrp_source_0.set_time_source(time_source, 0)
        self.uhd_usrp_source_0.set_subdev_spec('A:0 A:1 B:0', 0)
        self.uhd_usrp_source_0.set_samp_rate(samp_rate)
        self.uhd_usrp_source_0.set_time_now(uhd.time_spec(time.time()), uhd.ALL_MBOARDS)

        self.uhd_usrp_source_0.set_center_freq(915e6, 0)
        self.uhd_usrp_source_0.set_antenna('RX1', 0)
        self.uhd_usrp_source_0.set_gain(gain_db, 0)

        self.uhd_usrp_source_0.set_center_freq(870e6, 1)
        self.uhd_usrp_source_0.set_antenna('RX1', 1)
        self.uhd_usrp_source_0.set_gain(gain_db, 1)

        self.uhd_usrp_source_0.set_center_freq(960e6, 2)
        self.uhd_usrp_source_0.set_antenna('RX1', 2)
        self.uhd_usrp_source_0.set_gain(gain_db, 2)

        self.uhd_usrp_source_0.set_start_time(uhd.time_spec((time.time() + start_delay_s)))
        self.uhd_usrp_source_0.set_min_output_buffer(131072)


        ##################################################
        # Connections
        ##################################################
        self.connect((self.uhd_usrp_source_0, 0), (self.zeromq_push_sink_central, 0))
        self.connect((self.uhd_usrp_source_0, 1), (self.zeromq_push_sink_lower, 0))
        self.connect((self.uhd_usrp_source_0, 2), (self.zeromq_push_sink_upper, 0))


    def get_device_args(self):
        return self.device_args

    def set_device_args(self, device_args):
        self.device_args = device_args

    def get_clock_source(self):
        return self.clock_source

    def set_clock_source(self, clock_source):
        self.clock_source = clock_source

    def get_time_source(self):
        return self.time_source

    def set_time_source(self, time_source):
        self.time_source = time_source

    def get_gain_db(self):
        return self.gain_db

    def set_gain_db(self, gain_db):
        self.gain_db = gain_db
        self.uhd_usrp_source_0.set_gain(self.gain_db, 0)
        self.uhd_usrp_source_0.set_gain(self.gain_db, 1)
        self.uhd_usrp_source_0.set_gain(self.gain_db, 2)

    def get_port_base(self):
        return self.port_base

    def set_port_base(self, port_base):
        self.port_base = port_base

    def get_start_delay_s(self):
        return self.start_delay_s

    def set_start_delay_s(self, start_delay_s):
        self.start_delay_s = start_delay_s

    def get_samp_rate(self):
        return self.samp_rate

    def set_samp_rate(self, samp_rate):
        self.samp_rate = samp_rate
        self.uhd_usrp_source_0.set_samp_rate(self.samp_rate)



def argument_parser():
    description = 'USRP X410: three phase-aligned RX channels (central 915 MHz, lower 870 MHz, upper 960 MHz) at 30.72 MS/s, one shared clock, a timed start; each channel to a ZMQ PUSH sink with tag headers for `backscatter worker --gnuradio`'
    parser = ArgumentParser(description=description)
    parser.add_argument(
        "--device-args", dest="device_args", type=str, default='type=x4xx,master_clock_rate=245.76e6',
        help="Set UHD device arguments [default=%(default)r]")
    parser.add_argument(
        "--clock-source", dest="clock_source", type=str, default='internal',
        help="Set reference clock (internal, external, gpsdo) [default=%(default)r]")
    parser.add_argument(
        "--time-source", dest="time_source", type=str, default='internal',
        help="Set time source (internal, external, gpsdo) [default=%(default)r]")
    parser.add_argument(
        "--gain-db", dest="gain_db", type=eng_float, default=eng_notation.num_to_str(float(30)),
        help="Set RX gain (dB) [default=%(default)r]")
    parser.add_argument(
        "--port-base", dest="port_base", type=intx, default=5601,
        help="Set first ZMQ port (central; lower +1, upper +2) [default=%(default)r]")
    return parser


def main(top_block_cls=x410_to_worker, options=None):
    if options is None:
        options = argument_parser().parse_args()
    tb = top_block_cls(device_args=options.device_args, clock_source=options.clock_source, time_source=options.time_source, gain_db=options.gain_db, port_base=options.port_base)

    def sig_handler(sig=None, frame=None):
        tb.stop()
        tb.wait()

        sys.exit(0)

    signal.signal(signal.SIGINT, sig_handler)
    signal.signal(signal.SIGTERM, sig_handler)

    tb.start()

    tb.wait()


if __name__ == '__main__':
    main()
